// fauxqs (S3 + SQS) on 127.0.0.1 in a process of its own: a benchmark that counts its own
// CPU forks this, so the emulator's work is not counted with it. Sends its endpoint over IPC
// and exits with its parent.
import { buildApp } from 'fauxqs';

const app = buildApp({ logger: false });
const endpoint = await app.listen({ port: 0, host: '127.0.0.1' });
process.on('disconnect', () => process.exit(0));
process.send?.(endpoint);
