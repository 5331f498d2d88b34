// panva's oidc-provider 6.31.1 on 127.0.0.1, for rpkit's front-channel logout test
// (tests/interop/test_frontchannel.py). 6.x is the last major with OpenID Connect Front-Channel
// Logout (`features.frontchannelLogout`, draft 04); 7.0.0 removed it ("front-channel becoming
// more and more unreliable due to browsers blocking third-party cookie access", CHANGELOG).
// The other interop tests keep oidc-provider 9 in ../op.
//
//   node provider.mjs CONFIG.json
//
// CONFIG.json: {"port": 45678, "clients": [<client metadata>...]}
// The issuer is http://127.0.0.1:<port>; a fresh RSA signing key at every start.
//
// Stdout is one JSON object per line, as ../op/provider.mjs writes them:
//   {"event": "ready", "issuer", "kids": {"RSA": kid}}
//   {"event": "request", "method", "path", "status", "client": client_id | null,
//    "query": [names]}                       parameter names only, never values
//   {"event": "end_session.success", "client": client_id | null}
//   {"event": "frontchannel.page", "frames": [iframe src...]}   the logout page's iframes
// Dev interactions (the provider's own login and consent pages) accept any login and password.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;

function emit(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

const kid = `rsa-${randomBytes(4).toString('hex')}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const keys = [{ ...privateKey.export({ format: 'jwk' }), kid, use: 'sig' }];

// The default page of 6.x (lib/helpers/defaults.js, logoutPendingSource), with the frames
// reported on stdout: hidden iframes, then the post-logout redirect once all loaded (or after
// 2.5 s).
async function logoutPendingSource(ctx, frames, postLogoutRedirectUri) {
  emit({ event: 'frontchannel.page', frames: frames.map((f) => /src="([^"]*)"/.exec(f)?.[1]) });
  ctx.body = `<!DOCTYPE html>
    <head><meta charset="utf-8"><title>Logout</title>
      <style>iframe{visibility:hidden;position:absolute;left:0;top:0;height:0;width:0;border:none}</style>
    </head>
    <body>
      ${frames.join('')}
      <script>
        var loaded = 0;
        function redirect() { window.location.replace(${JSON.stringify(postLogoutRedirectUri)}); }
        function frameOnLoad() { loaded += 1; if (loaded === ${frames.length}) { redirect(); } }
        Array.prototype.slice.call(document.querySelectorAll('iframe')).forEach(function (e) {
          e.onload = frameOnLoad;
        });
        setTimeout(redirect, 2500);
      </script>
    </body>
    </html>`;
}

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
  pkce: { required: () => true, methods: ['S256'] },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    frontchannelLogout: { enabled: true, ack: 'draft-04', logoutPendingSource },
  },
});

function clientOf(ctx) {
  return ctx?.oidc?.client?.clientId ?? null;
}

provider.use(async (ctx, next) => {
  await next();
  emit({
    event: 'request',
    method: ctx.method,
    path: ctx.path,
    status: ctx.status,
    client: clientOf(ctx),
    query: Object.keys(ctx.query),
  });
});

provider.on('end_session.success', (ctx) => {
  emit({ event: 'end_session.success', client: clientOf(ctx) });
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
  emit({ event: 'ready', issuer, kids: { RSA: kid } });
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
