#!/usr/bin/env node
// Runs the TypeScript CLI directly: no build step between `npm ci` and `npx labeler`.
process.env.ORT_DISABLE_TELEMETRY ??= '1';
// Node 20 is supported here; the SDK's notice about its future releases is noise on every run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { register } = await import('tsx/esm/api');
register();
await import('../cli/main.ts');
