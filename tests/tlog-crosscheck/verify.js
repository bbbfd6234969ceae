// Outside verifiers of csp-ledger's Merkle proofs and signed checkpoints, run by
// crates/tlog/tests/crosscheck.rs: reads a JSON array of cases from the file named by the
// first argument and prints a JSON array of verdicts (true: verified), one per case.
//
// - Inclusion and consistency proofs: @transmute/rfc9162, an implementation of RFC 9162's
//   verification algorithms by another team.
// - Signed checkpoints and inclusion in them: @sigstore/verify (Sigstore's verifier, which
//   checks Rekor's C2SP signed-note checkpoints), through its checkpoint and Merkle modules.
// - Verifier keys: the C2SP key id recomputed here with Node's own SHA-256.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const path = require('path');
const rfc9162 = require('@transmute/rfc9162').default;
const sigstoreDist = path.join(path.dirname(require.resolve('@sigstore/verify')));
const { verifyCheckpoint } = require(path.join(sigstoreDist, 'tlog', 'checkpoint.js'));
const { verifyMerkleInclusion } = require(path.join(sigstoreDist, 'tlog', 'merkle.js'));

const bytes = (b64) => new Uint8Array(Buffer.from(b64, 'base64'));

// The C2SP key id: SHA-256(name || 0x0A || type || public key)[:4].
function keyId(name, type, publicKey) {
  return crypto.createHash('sha256')
    .update(Buffer.from(name, 'utf8')).update(Buffer.from([0x0a, type])).update(publicKey)
    .digest().subarray(0, 4);
}

// Parses <name>+<hex id>+<base64(0x01 || key)>: the base64 may hold '+', so split twice.
function parseVerifierKey(vkey) {
  const first = vkey.indexOf('+');
  const second = vkey.indexOf('+', first + 1);
  const name = vkey.slice(0, first);
  const id = vkey.slice(first + 1, second);
  const key = Buffer.from(vkey.slice(second + 1), 'base64');
  if (key.length !== 33 || key[0] !== 0x01) throw new Error('not an Ed25519 verifier key');
  return { name, id, publicKey: key.subarray(1) };
}

async function verify(c) {
  switch (c.kind) {
    case 'inclusion':
      return rfc9162.verifyInclusionProof(bytes(c.root), bytes(c.leaf), {
        tree_size: c.size, leaf_index: c.index, inclusion_path: c.proof.map(bytes),
      });
    case 'consistency': {
      // @transmute/rfc9162 leaves out RFC 9162 §2.1.4.2 step 2 (its code says so: "hmm
      // erata?"): when size1 is a power of two, the old root must lead the path. Done here.
      const path = c.proof.map(bytes);
      if ((c.size1 & (c.size1 - 1)) === 0) path.unshift(bytes(c.root1));
      return rfc9162.verifyConsistencyProof(bytes(c.root1), bytes(c.root2), {
        tree_size_1: c.size1, tree_size_2: c.size2, consistency_path: path,
      });
    }
    case 'vkey': {
      const key = parseVerifierKey(c.vkey);
      return keyId(key.name, 0x01, key.publicKey).toString('hex') === key.id;
    }
    case 'signed-inclusion': {
      // A Sigstore transparency log entry whose checkpoint is ours: the log is found by the
      // signature's key hint (our C2SP key id, computed here) and name, then the Ed25519
      // signature, and the record's inclusion under the checkpoint's root, are checked.
      const key = parseVerifierKey(c.vkey);
      const tlogs = [{
        logID: keyId(key.name, 0x01, key.publicKey),
        baseURL: key.name,
        publicKey: crypto.createPublicKey({
          key: { kty: 'OKP', crv: 'Ed25519', x: key.publicKey.toString('base64url') },
          format: 'jwk',
        }),
      }];
      const entry = {
        canonicalizedBody: Buffer.from(c.record, 'base64'),
        inclusionProof: {
          logIndex: String(c.index),
          hashes: c.proof.map((h) => Buffer.from(h, 'base64')),
          checkpoint: { envelope: c.note },
        },
      };
      try {
        const checkpoint = verifyCheckpoint(entry, tlogs);
        if (checkpoint.logSize !== BigInt(c.size)) return false;
        verifyMerkleInclusion(entry, checkpoint);
        return true;
      } catch (error) {
        return false;
      }
    }
    default:
      throw new Error(`unknown case kind ${c.kind}`);
  }
}

(async () => {
  const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const verdicts = [];
  for (const c of cases) verdicts.push(await verify(c));
  process.stdout.write(JSON.stringify(verdicts));
})().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
