// PostGraphile 4 over the benchmark's PostgreSQL database: the read benchmark's peer, started
// by bench/peer.py (one process a port). Schema `public`, queries only, production options.
//
//   PEER_PORT=5001 PEER_DATABASE_URL=postgres://127.0.0.1:5432/db node server.js
//
// With PEER_JWT_PUBLIC_KEY (a PEM file: the API's development ES256 public key), PEER_JWT_ISSUER
// and PEER_JWT_AUDIENCE, every request must carry a bearer token that verifies as the API's
// does (ES256, issuer, audience, exp and nbf); PostGraphile then hands the claims to PostgreSQL
// as `jwt.claims.*` settings, in a transaction, as it always does with JWTs.
'use strict';

const fs = require('fs');
const http = require('http');
const { postgraphile } = require('postgraphile');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const port = Number(env('PEER_PORT'));
const keyFile = process.env.PEER_JWT_PUBLIC_KEY;
const jwt = keyFile
  ? {
      jwtPublicKey: fs.readFileSync(keyFile, 'utf8'),
      jwtVerifyOptions: {
        algorithms: ['ES256'],
        issuer: env('PEER_JWT_ISSUER'),
        audience: env('PEER_JWT_AUDIENCE'),
      },
    }
  : {};

// The options the PostGraphile 4 documentation recommends for production, less what a read
// benchmark has no use for (subscriptions, batching, plugins): no GraphiQL, no watching the
// schema, no query log, no mutations, no stack traces.
const middleware = postgraphile(env('PEER_DATABASE_URL'), 'public', {
  ...jwt,
  watchPg: false,
  graphiql: false,
  disableQueryLog: true,
  disableDefaultMutations: true,
  dynamicJson: true,
  setofFunctionsContainNulls: false,
  ignoreRBAC: false,
  legacyRelations: 'omit',
  simpleCollections: 'both',
  extendedErrors: ['errcode'],
  retryOnInitFail: false,
});

const server = http.createServer((req, res) => {
  if (req.url === '/ready') {
    // Ready once the schema is built from the database (the first request would otherwise wait).
    middleware.getGraphQLSchema().then(
      () => res.writeHead(200).end('ready'),
      (error) => res.writeHead(503).end(String(error)),
    );
    return;
  }
  if (keyFile && !/^Bearer /.test(req.headers.authorization || '')) {
    // PostGraphile verifies a token that is sent but lets a request without one through as
    // anonymous; the API refuses it.
    res.writeHead(401, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ message: 'a bearer token is required' }] }));
    return;
  }
  middleware(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close(() => middleware.release().then(() => process.exit(0)));
  server.closeAllConnections();
});
