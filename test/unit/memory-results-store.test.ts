import { describe } from 'node:test';
import { MemoryJobs, MemoryResultsStore } from '../helpers/memory-ports.ts';
import { describeResultsStoreContract } from '../helpers/results-store-contract.ts';

describe('the in-memory results store (the fast tier’s stand-in for DynamoDB)', () => {
  const results = new MemoryResultsStore({ indexMinScore: 0.05 });
  const jobs = new MemoryJobs();
  // The contract uses each view on its own keys, so two stores stand in for DynamoDB's one table.
  const jobStore = new MemoryResultsStore({ indexMinScore: 0.05, jobs });
  describeResultsStoreContract('mem', () => ({
    store: results,
    jobStore,
    ledger: jobs,
    counts: async (jobId) => jobs.counts(jobId),
  }));
});
