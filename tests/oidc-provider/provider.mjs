// A real OpenID provider for csp-ledger's directory tests: the certified `oidc-provider`
// package, on loopback, issuing JWT access tokens with Entra ID's claims (tid, oid, wids) by
// the client-credentials grant. Each client stands for one person of one tenant (see
// CLIENTS). Every start generates a fresh signing key, so a restart on the same port is a key
// rotation at the issuer.
//
// Usage: node provider.mjs PORT   (PORT 0 picks a free port). Prints one line,
// `oidc-provider listening on http://127.0.0.1:PORT`, once it serves.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10';
const TENANT_A = 'aaaaaaaa-0000-4000-8000-00000000000a';
const TENANT_B = 'bbbbbbbb-0000-4000-8000-00000000000b';

// client id -> the person its tokens are for.
const CLIENTS = {
  'tenant-a-admin': { tid: TENANT_A, oid: 'a0000000-0000-4000-8000-0000000000a1', wids: [GLOBAL_ADMIN], email: 'admin@tenant-a.example', name: 'Tenant A Admin' },
  'tenant-a-user': { tid: TENANT_A, oid: 'a0000000-0000-4000-8000-0000000000a2', wids: [], email: 'user@tenant-a.example', name: 'Tenant A User' },
  'tenant-b-admin': { tid: TENANT_B, oid: 'b0000000-0000-4000-8000-0000000000b1', wids: [GLOBAL_ADMIN], email: 'admin@tenant-b.example', name: 'Tenant B Admin' },
  // Tokens that expire one second after they are issued.
  'tenant-a-short': { tid: TENANT_A, oid: 'a0000000-0000-4000-8000-0000000000a1', wids: [GLOBAL_ADMIN], email: 'admin@tenant-a.example', name: 'Tenant A Admin', ttl: 1 },
};

const port = Number(process.argv[2] ?? 0);
const server = createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: Object.keys(CLIENTS).map((client_id) => ({
    client_id,
    client_secret: `${client_id}-secret`,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  })),
  jwks: { keys: [signingKey] },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:csp-ledger',
      useGrantedResource: () => true,
      // Any resource is an audience of its own, so that a test can ask for another one's.
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'ledger',
        audience: resource,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  ttl: {
    ClientCredentials: (ctx, token, client) => CLIENTS[client.clientId]?.ttl ?? 600,
  },
  extraTokenClaims: (ctx, token) => {
    const { ttl, ...claims } = CLIENTS[token.clientId] ?? {};
    return claims;
  },
});

server.on('request', provider.callback());
console.log(`oidc-provider listening on ${issuer}`);
