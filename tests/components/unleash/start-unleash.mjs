// Starts unleash-server (the version package.json pins) for Backout's tests, on 127.0.0.1 only.
// Everything comes from the environment, and the script exits with status 2 when a value is
// missing:
//   UNLEASH_DATABASE_URL   postgresql://USER@127.0.0.1:PORT/NAME, a fresh empty database
//   UNLEASH_PORT           the TCP port to listen on
//   UNLEASH_ADMIN_TOKEN    the admin API token to create at start, such as *:*.<64 hex>
//   UNLEASH_BACKEND_TOKEN  optional: a backend (SDK) token to create at start, *:ENV.<hex>
//   UNLEASH_SESSION_SECRET optional: the cookie-signing secret (default: random per start)
//
// No admin user with a password is created, so the only credentials are the two tokens above.
// Version checks, telemetry and Scarf analytics are off, so the server contacts no other host.
import { randomBytes } from 'node:crypto';

import { start, LogLevel } from 'unleash-server';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`start-unleash: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const databaseUrl = required('UNLEASH_DATABASE_URL');
const port = Number.parseInt(required('UNLEASH_PORT'), 10);
const adminToken = required('UNLEASH_ADMIN_TOKEN');
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`start-unleash: UNLEASH_PORT '${process.env.UNLEASH_PORT}' is not a TCP port`);
  process.exit(2);
}

// unleash-server reads its token list, and a few switches, from the environment only.
process.env.INIT_ADMIN_API_TOKENS = adminToken;
if (process.env.UNLEASH_BACKEND_TOKEN) {
  process.env.INIT_BACKEND_API_TOKENS = process.env.UNLEASH_BACKEND_TOKEN;
}
process.env.SCARF_ANALYTICS = 'false';
process.env.DO_NOT_TRACK = '1';
process.env.TZ = 'UTC';

const url = new URL(databaseUrl);
await start({
  db: {
    host: url.hostname,
    port: Number.parseInt(url.port || '5432', 10),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: url.pathname.replace(/^\//, ''),
    ssl: false,
    pool: { min: 0, max: 4 },
  },
  server: {
    host: '127.0.0.1',
    port,
    unleashUrl: `http://127.0.0.1:${port}`,
    secret: process.env.UNLEASH_SESSION_SECRET || randomBytes(32).toString('hex'),
    gracefulShutdownEnable: true,
  },
  authentication: {
    type: 'open-source',
    enableApiToken: true,
    createAdminUser: false,
  },
  versionCheck: { enable: false },
  telemetry: false,
  logLevel: LogLevel[process.env.UNLEASH_LOG_LEVEL || 'warn'],
});
console.log(`start-unleash: listening on http://127.0.0.1:${port}`);
