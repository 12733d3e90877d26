// A real OpenID provider for authresolver's end-to-end tests: panva's
// oidc-provider (OpenID Certified), configured for the client-credentials
// grant with resource indicators, so that it issues JWT access tokens
// (typ at+jwt) for one resource and opaque tokens for another, with
// introspection (RFC 7662), revocation (RFC 7009) and UserInfo enabled.
//
// Usage: node provider.mjs <port> <keyfile>
//   port     TCP port on 127.0.0.1 (0 picks a free one); the issuer is
//            http://127.0.0.1:<port>.
//   keyfile  where the signing key is kept (created if missing), so that
//            a restarted provider signs with the same key.
// It prints one JSON line {"issuer": "..."} once it accepts connections,
// and stops on SIGTERM or SIGINT.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

export const resources = {
  'https://jwt.api.test': 'jwt',
  'https://opaque.api.test': 'opaque',
};

const [port = '0', keyfile = 'provider-key.json'] = process.argv.slice(2);

function signingKey() {
  if (existsSync(keyfile)) {
    return JSON.parse(readFileSync(keyfile, 'utf8'));
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'e2e-1', alg: 'ES256', use: 'sig' };
  writeFileSync(keyfile, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

const server = createServer();
await new Promise((resolve) => server.listen(Number(port), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      // The application that obtains tokens.
      client_id: 'app',
      client_secret: 'app-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
      scope: 'read',
    },
    {
      // authresolver: introspects tokens, obtains none.
      client_id: 'authresolver',
      client_secret: 'resolver-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [signingKey()] },
  cookies: { keys: ['e2e-cookie-key'] },
  scopes: ['openid', 'read'],
  ttl: { ClientCredentials: 600, AccessToken: 600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, indicator) {
        const format = resources[indicator];
        if (!format) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: 'read',
          audience: indicator,
          accessTokenTTL: 600,
          accessTokenFormat: format,
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  // Client-credentials tokens have no end user: name the client as the
  // subject (as RFC 9068 does for JWT access tokens), so that opaque tokens
  // introspect with a sub too; roles feed the identity headers.
  extraTokenClaims(ctx, token) {
    return { sub: token.clientId, roles: ['reader'] };
  },
  findAccount(ctx, id) {
    return { accountId: id, claims: () => ({ sub: id, email: `${id}@example.test`, email_verified: true }) };
  },
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
