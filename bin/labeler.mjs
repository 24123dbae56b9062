#!/usr/bin/env node
// Runs the TypeScript CLI directly: no build step between `npm ci` and `npx labeler`.
process.env.ORT_DISABLE_TELEMETRY ??= '1';
const { register } = await import('tsx/esm/api');
register();
await import('../cli/main.ts');
