// KurrentDB's official Node.js client against csp-ledger's KurrentDB door.
//
// Run by crates/csp-ledger/tests/kurrentdb_door.rs against a real `csp-ledger serve` that has
// onboarded a provider, with the door's address, its generated certificate authority, an
// auditor key, the store-admin key and two events of one partner stream that a migration
// tool could bring (MessagePack payloads and the ledger's envelope metadata) in the
// environment. Connects over TLS with credentials, verifying the door; reads a stream and
// $all both ways; follows $all with an event-type filter across a reconnect; appends through
// the admin key; gets the concurrency error on a wrong expected revision; is refused a
// foreign event; lists persistent subscriptions and projections (none).

import assert from "node:assert/strict";

import {
  BACKWARDS,
  END,
  FORWARDS,
  KurrentDBClient,
  NO_STREAM,
  START,
  WrongExpectedVersionError,
  binaryEvent,
  eventTypeFilter,
} from "@kurrent/kurrentdb-client";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
};

const DOOR = env("DOOR");
const CA_FILE = env("CA_FILE");
const STREAM = env("MIGRATED_STREAM");
const MIGRATED = JSON.parse(env("MIGRATED_EVENTS"));
const WAIT_MS = 30_000;

const connect = (user, key) =>
  KurrentDBClient.connectionString(
    `kurrentdb://${user}:${encodeURIComponent(key)}@${DOOR}?tls=true&tlsCAFile=${encodeURIComponent(CA_FILE)}`
  );

const collect = async (iterable) => {
  const out = [];
  for await (const resolved of iterable) out.push(resolved.event);
  return out;
};

const positionOf = (event) => event.position.commit;

/** The next `count` events of a subscription, or a failure after WAIT_MS. */
const take = async (iterator, count) => {
  const out = [];
  while (out.length < count) {
    const next = await Promise.race([
      iterator.next(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`waited ${WAIT_MS} ms for event ${out.length + 1} of ${count}`)), WAIT_MS)
      ),
    ]);
    assert.ok(!next.done, "the subscription ended");
    out.push(next.value.event);
  }
  return out;
};

const migrated = (index) =>
  binaryEvent({
    type: MIGRATED[index].type,
    data: Buffer.from(MIGRATED[index].data, "base64"),
    metadata: MIGRATED[index].metadata,
  });

async function main() {
  const reader = connect("auditor", env("AUDITOR_KEY"));
  const admin = connect("admin", env("ADMIN_KEY"));
  try {
    // $all forwards: the onboarding the ledger recorded, in position order.
    const all = await collect(reader.readAll({ fromPosition: START, direction: FORWARDS }));
    assert.equal(all[0].type, "ProviderOnboarded", JSON.stringify(all.map((e) => e.type)));
    for (let i = 1; i < all.length; i += 1) {
      assert.ok(positionOf(all[i - 1]) < positionOf(all[i]), "positions increase");
    }
    // $all backwards: the same events, last first.
    const backwards = await collect(reader.readAll({ fromPosition: END, direction: BACKWARDS, maxCount: all.length }));
    assert.deepEqual(backwards.map((e) => e.id), all.map((e) => e.id).reverse());

    // A stream forwards and backwards: the provider's partner stream.
    const partnerStream = all[0].streamId;
    const forwards = await collect(reader.readStream(partnerStream, { fromRevision: START, direction: FORWARDS }));
    assert.deepEqual(forwards.map((e) => e.id), all.filter((e) => e.streamId === partnerStream).map((e) => e.id));
    assert.deepEqual(forwards.map((e) => e.revision), forwards.map((_, i) => BigInt(i)));
    assert.equal(forwards[0].isJson, false, "the ledger's payloads are MessagePack");
    const last = await collect(reader.readStream(partnerStream, { fromRevision: END, direction: BACKWARDS, maxCount: 1 }));
    assert.deepEqual(last.map((e) => e.id), [forwards.at(-1).id]);

    // Catch-up subscription to $all, filtered on event types by the server.
    const types = ["UserAdded", "EnrollmentStarted", "MpnProfilesObserved"];
    const filter = eventTypeFilter({ regex: `^(${types.join("|")})$` });
    const existing = all.filter((e) => types.includes(e.type));
    assert.ok(existing.length > 0, "the onboarding added a user");
    const first = reader.subscribeToAll({ fromPosition: START, filter });
    const firstIterator = first[Symbol.asyncIterator]();
    const caughtUp = await take(firstIterator, existing.length);
    assert.deepEqual(caughtUp.map((e) => e.id), existing.map((e) => e.id));

    // Appended through the admin key: it arrives live.
    const enrollment = migrated(0);
    const appended = await admin.appendToStream(STREAM, enrollment, { streamState: NO_STREAM });
    assert.equal(appended.success, true);
    assert.equal(appended.nextExpectedRevision, 0n);
    const [live] = await take(firstIterator, 1);
    assert.equal(live.id, enrollment.id);
    assert.equal(live.type, "EnrollmentStarted");
    await first.unsubscribe();

    // A wrong expected revision is the client's concurrency error, with both revisions.
    const observed = migrated(1);
    await assert.rejects(
      admin.appendToStream(STREAM, observed, { streamState: NO_STREAM }),
      (error) => {
        assert.ok(error instanceof WrongExpectedVersionError, `${error?.constructor?.name}: ${error}`);
        assert.equal(error.actualState, 0n);
        assert.equal(error.expectedState, NO_STREAM);
        return true;
      }
    );
    await assert.rejects(
      admin.appendToStream(STREAM, observed, { streamState: 5n }),
      (error) => error instanceof WrongExpectedVersionError && error.actualState === 0n && error.expectedState === 5n
    );
    const second = await admin.appendToStream(STREAM, observed, { streamState: 0n });
    assert.equal(second.nextExpectedRevision, 1n);

    // Resubscribing from the last event seen: the next one, and no duplicate.
    const again = reader.subscribeToAll({ fromPosition: live.position, filter });
    const [resumed] = await take(again[Symbol.asyncIterator](), 1);
    assert.equal(resumed.id, observed.id);
    await again.unsubscribe();

    // Refused whole, nothing appended: a type the ledger does not know, a stream outside
    // its namespace, and any append with a reader's key.
    const unknown = binaryEvent({ type: "Happened", data: Buffer.from([0x90]), metadata: MIGRATED[1].metadata });
    await assert.rejects(admin.appendToStream(STREAM, unknown), /refused/);
    await assert.rejects(admin.appendToStream("billing-2026", migrated(1)), /refused/);
    await assert.rejects(reader.appendToStream(STREAM, migrated(1)));
    const head = await collect(reader.readAll({ fromPosition: END, direction: BACKWARDS, maxCount: 1 }));
    assert.equal(head[0].id, observed.id, "nothing after the last admitted event");

    // What tooling lists: nothing, rather than an error.
    assert.deepEqual(await reader.listAllPersistentSubscriptions(), []);
    assert.deepEqual(await reader.listProjections(), []);
  } finally {
    await reader.dispose();
    await admin.dispose();
  }
  console.log("node official client: ok");
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  }
);
