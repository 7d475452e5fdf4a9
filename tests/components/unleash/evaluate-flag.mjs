// Evaluates one flag with Unleash's official Node SDK (unleash-client) and prints the result as
// one line of JSON on stdout. Inputs, from the environment:
//   UNLEASH_URL            the server's base URL, such as http://127.0.0.1:4242 (no /api suffix)
//   UNLEASH_SDK_TOKEN      a backend token for the environment to evaluate
//   UNLEASH_FLAG           the flag's name
//   UNLEASH_CONTEXT        optional: the Unleash context as a JSON object (userId, properties…)
//   UNLEASH_SDK_TIMEOUT_MS optional: how long to wait for the first fetch (default 10000)
// Output: {"flag","enabled","variant":{"name","enabled","feature_enabled","payload"},
//          "exists","fetched_at"}. Exit status 0 after an evaluation, 1 when the SDK could not
// fetch the flags, 2 on invalid input.
import { InMemStorageProvider, Unleash } from 'unleash-client';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`evaluate-flag: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const baseUrl = required('UNLEASH_URL').replace(/\/+$/, '');
const token = required('UNLEASH_SDK_TOKEN');
const flag = required('UNLEASH_FLAG');
let context = {};
try {
  context = JSON.parse(process.env.UNLEASH_CONTEXT || '{}');
} catch (error) {
  console.error(`evaluate-flag: UNLEASH_CONTEXT is not JSON: ${error.message}`);
  process.exit(2);
}
const timeoutMs = Number.parseInt(process.env.UNLEASH_SDK_TIMEOUT_MS || '10000', 10);

const unleash = new Unleash({
  appName: 'backout-readiness',
  url: `${baseUrl}/api/`,
  customHeaders: { Authorization: token },
  disableMetrics: true,
  // The first fetch starts at once; the process exits before the next one (15 s by default).
  storageProvider: new InMemStorageProvider(),
  skipInstanceCountWarning: true,
});

// The SDK reports fetch failures as 'error' events and keeps retrying, so a timer ends the wait.
const timer = setTimeout(() => {
  console.error(`evaluate-flag: no flags fetched from ${baseUrl} within ${timeoutMs} ms`);
  unleash.destroy();
  process.exit(1);
}, timeoutMs);
let lastError = '';
unleash.on('error', (error) => {
  lastError = error?.message ?? String(error);
  console.error(`evaluate-flag: ${lastError}`);
});

unleash.once('synchronized', () => {
  clearTimeout(timer);
  const enabled = unleash.isEnabled(flag, context);
  const variant = unleash.getVariant(flag, context);
  const definition = unleash.getFeatureToggleDefinition(flag);
  const result = {
    flag,
    exists: definition !== undefined,
    enabled,
    variant: {
      name: variant.name,
      enabled: variant.enabled,
      feature_enabled: variant.feature_enabled ?? variant.featureEnabled ?? null,
      payload: variant.payload ?? null,
    },
    fetched_at: new Date().toISOString(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  unleash.destroy();
  process.exit(0);
});
