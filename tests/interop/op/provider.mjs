// panva's oidc-provider on 127.0.0.1, for rpkit's interoperability tests (tests/interop).
//
//   node provider.mjs CONFIG.json
//
// CONFIG.json: {"port": 45678, "clients": [<client metadata>...],
//               "accessTokenTtl": {"<client_id>": seconds}, "keyGeneration": "a",
//               "stripIssFor": ["<client_id>"], "dpopNonceFor": ["<client_id>"]}
// The issuer is http://127.0.0.1:<port>. Fresh signing keys (RSA, P-256, Ed25519) are generated
// at every start (kids end in keyGeneration, random by default), so a restart on the same port
// is a signing-key rotation. stripIssFor plays a network attacker: the RFC 9207 iss is removed
// from those clients' query-mode authorization responses after oidc-provider made them.
// Pushed authorization requests and DPoP are on for every client (a client asks for them with
// require_pushed_authorization_requests and dpop_bound_access_tokens); dpopNonceFor lists the
// clients whose DPoP proofs must carry a server nonce. Introspection is on, for cnf.jkt.
//
// Stdout is one JSON object per line, for the tests to assert on what the provider saw:
//   {"event": "ready", "issuer", "kids": {"RSA": kid, "EC": kid, "OKP": kid}}
//   {"event": "request", "method", "path", "status", "client": client_id | null,
//    "query": [names], "body": [names], "authorization": "Basic" | null, "dpop": bool}
//                                           parameter names and schemes only, never values
//   {"event": "<provider event>", "client": client_id, ...}
// Dev interactions (the provider's own login and consent pages) accept any login and password.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const generation = config.keyGeneration ?? randomBytes(4).toString('hex');

function emit(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

function signingKey(type, options, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig' };
}

// One key per type: RSA serves RS256 and PS256, P-256 serves ES256, Ed25519 serves EdDSA.
const keys = [
  signingKey('rsa', { modulusLength: 2048 }, `rsa-${generation}`),
  signingKey('ec', { namedCurve: 'P-256' }, `ec-${generation}`),
  signingKey('ed25519', undefined, `okp-${generation}`),
];

const accessTokenTtl = config.accessTokenTtl ?? {};
const dpopNonceFor = new Set(config.dpopNonceFor ?? []);

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys },
  cookies: { keys: ['rpkit-interop-cookie-key-not-a-secret'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, email: `${sub}@interop.example`, email_verified: true, name: `Interop ${sub}` };
      },
    };
  },
  // Every client must send PKCE (S256 is the only method the provider accepts by default), so a
  // successful login proves the RP sent it.
  pkce: { required: () => true },
  rotateRefreshToken: true,
  ttl: {
    AccessToken(ctx, token, client) {
      return accessTokenTtl[client?.clientId] ?? 3600;
    },
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    introspection: { enabled: true },
    pushedAuthorizationRequests: { enabled: true },
    dPoP: {
      enabled: true,
      nonceSecret: randomBytes(32),
      requireNonce: (ctx) => dpopNonceFor.has(ctx.oidc?.client?.clientId),
    },
  },
  // oidc-provider refuses outgoing requests to special-use addresses (its SSRF protection: an
  // undici dispatcher it passes in options), and the RP's back-channel logout endpoint is on
  // 127.0.0.1. Its `fetch` option makes every outgoing request: drop the guard for 127.0.0.1.
  fetch(url, options) {
    if (new URL(url).hostname === '127.0.0.1') {
      delete options.dispatcher;
    }
    return globalThis.fetch(url, options);
  },
});

function clientOf(ctx) {
  return ctx?.oidc?.client?.clientId ?? null;
}

const stripIssFor = new Set(config.stripIssFor ?? []);

provider.use(async (ctx, next) => {
  await next();
  const location = ctx.response.get('location');
  if (location && stripIssFor.has(clientOf(ctx))) {
    const url = new URL(location, issuer);
    if (url.searchParams.has('code')) {
      url.searchParams.delete('iss');
      ctx.set('location', url.href);
      emit({ event: 'tampered', client: clientOf(ctx), removed: 'iss' });
    }
  }
  const body = ctx.oidc?.body ?? {};
  const authorization = ctx.get('authorization');
  emit({
    event: 'request',
    method: ctx.method,
    path: ctx.path,
    status: ctx.status,
    client: clientOf(ctx),
    query: Object.keys(ctx.query),
    body: Object.keys(body),
    authorization: authorization ? authorization.split(' ')[0] : null,
    dpop: Boolean(ctx.get('dpop')),
  });
});

provider.on('authorization.success', (ctx) => {
  emit({
    event: 'authorization.success',
    client: clientOf(ctx),
    response_mode: ctx.oidc.params.response_mode ?? null,
  });
});
provider.on('grant.success', (ctx) => {
  emit({
    event: 'grant.success',
    client: clientOf(ctx),
    grant_type: ctx.oidc.params.grant_type,
    client_auth: ctx.oidc.client.clientAuthMethod,
  });
});
provider.on('refresh_token.consumed', (token) => {
  emit({ event: 'refresh_token.consumed', client: token.clientId });
});
provider.on('end_session.success', (ctx) => {
  emit({ event: 'end_session.success', client: clientOf(ctx) });
});
provider.on('backchannel.success', (ctx, client, accountId, sid) => {
  emit({ event: 'backchannel.success', client: client.clientId, sub: accountId, sid });
});
provider.on('backchannel.error', (ctx, err, client, accountId, sid) => {
  emit({
    event: 'backchannel.error', client: client.clientId, sub: accountId, sid, error: String(err),
  });
});
for (const name of ['grant.error', 'authorization.error', 'end_session.error', 'server_error']) {
  provider.on(name, (ctx, err) => {
    emit({
      event: name,
      client: clientOf(ctx),
      error: err?.error ?? err?.name ?? null,
      description: err?.error_description ?? err?.message ?? null,
    });
  });
}

const server = provider.listen(config.port, '127.0.0.1', () => {
  emit({
    event: 'ready',
    issuer,
    kids: Object.fromEntries(keys.map((key) => [key.kty, key.kid])),
  });
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
