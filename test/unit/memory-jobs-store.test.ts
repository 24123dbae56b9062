import { describe } from 'node:test';
import { describeJobsStoreContract } from '../helpers/jobs-store-contract.ts';
import { MemoryJobs } from '../helpers/memory-ports.ts';

describe('the in-memory jobs store (the fast tier’s stand-in for the DynamoDB jobs table)', () => {
  const jobs = new MemoryJobs();
  describeJobsStoreContract(
    'mem',
    () => jobs,
    (sendRecount) => new MemoryJobs({ inlineRecountMax: 0, recountPageLimit: 1, sendRecount }),
  );
});
