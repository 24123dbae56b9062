import { errorMessage, LabelerError } from '../shared/errors.ts';
import { createApp } from './create-app.ts';

try {
  createApp().app.synth();
} catch (error) {
  // A bad cdk.json or -c setting is the user's to fix: one line naming it, not a stack trace.
  if (!(error instanceof LabelerError)) throw error;
  process.stderr.write(`labeler cdk: [${error.code}] ${errorMessage(error)}\n`);
  process.exitCode = 1;
}
