// Drives a LaunchDarkly REST API v2 server (here: the emulator) with LaunchDarkly's own generated
// client, launchdarkly-api-typescript. It reads a flag, turns it off in one environment with a
// semantic patch, lists the flag's audit log and reads the newest entry. It prints one JSON
// object per step on its own line; a failed step prints its HTTP status, the error body and the
// Retry-After header instead of a result, and the script goes on with the next step.
//
// Usage: node ld_client.js BASE_URL TOKEN PROJECT FLAG ENVIRONMENT COMMENT

'use strict';

const { Configuration, FeatureFlagsApi, AuditLogApi } = require('launchdarkly-api-typescript');

const [baseUrl, token, project, flag, environment, comment] = process.argv.slice(2);
if (!comment) {
  console.error('usage: node ld_client.js BASE_URL TOKEN PROJECT FLAG ENVIRONMENT COMMENT');
  process.exit(2);
}

const configuration = new Configuration({ apiKey: token, basePath: baseUrl });
const flags = new FeatureFlagsApi(configuration);
const auditLog = new AuditLogApi(configuration);

function print(step, fields) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + '\n');
}

async function run(step, call, summarize) {
  try {
    const response = await call();
    print(step, { status: response.status, result: summarize(response.data) });
    return response.data;
  } catch (error) {
    if (!error.response) throw error;
    print(step, {
      status: error.response.status,
      error: error.response.data,
      retryAfter: error.response.headers['retry-after'] ?? null,
    });
    return null;
  }
}

function environmentOf(data) {
  const config = data.environments[environment];
  return {
    key: data.key,
    version: data._version,
    variations: data.variations.map((variation) => variation.value),
    on: config.on,
    offVariation: config.offVariation ?? null,
    fallthrough: config.fallthrough,
    prerequisites: config.prerequisites,
    targets: config.targets,
    rules: config.rules,
  };
}

async function main() {
  await run('read', () => flags.getFeatureFlag(project, flag, environment), environmentOf);

  // The generated client types the body as a JSON patch with a comment; a semantic patch is the
  // same PATCH with LaunchDarkly's domain-model Content-Type and an instructions body.
  const semanticPatch = { environmentKey: environment, comment, instructions: [{ kind: 'turnFlagOff' }] };
  await run(
    'turn-off',
    () =>
      flags.patchFeatureFlag(project, flag, semanticPatch, undefined, {
        headers: { 'Content-Type': 'application/json; domain-model=launchdarkly.semanticpatch' },
      }),
    environmentOf,
  );

  const spec = `proj/${project}:env/${environment}:flag/${flag}`;
  const listing = await run(
    'audit-log',
    () => auditLog.getAuditLogEntries(undefined, undefined, undefined, 10, spec),
    (data) =>
      data.items.map((entry) => ({
        id: entry._id,
        date: entry.date,
        comment: entry.comment ?? null,
        member: entry.member ? entry.member.email : null,
        actions: entry.accesses.map((access) => access.action),
        titleVerb: entry.titleVerb,
      })),
  );

  if (listing && listing.items.length > 0) {
    await run(
      'audit-entry',
      () => auditLog.getAuditLogEntry(listing.items[0]._id),
      (entry) => ({
        id: entry._id,
        comment: entry.comment ?? null,
        member: entry.member ? entry.member.email : null,
        token: entry.token ? entry.token.name : null,
        onBefore: entry.previousVersion.environments[environment].on,
        onAfter: entry.currentVersion.environments[environment].on,
      }),
    );
  }
}

main().catch((error) => {
  console.error(`ld_client: ${error.stack || error}`);
  process.exit(1);
});
