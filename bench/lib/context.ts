import type { B0Info } from './model.ts';
import type { MachineInfo } from './system.ts';
import type { Results, SectionData, SectionName } from './types.ts';

/** How much work each section does: the full run must finish in 10 minutes on 2 cores. */
export interface BenchConfig {
  readonly quick: boolean;
  readonly fmaSeconds: number;
  readonly inference: {
    readonly batchSizes: readonly number[];
    readonly threads: readonly number[];
    readonly seconds: number;
    readonly rounds: number;
    readonly warmupRuns: number;
    readonly minRuns: number;
  };
  readonly preprocess: {
    readonly seconds: number;
    readonly counts: { readonly small: number; readonly medium: number; readonly large: number };
  };
  /** preprocessInto against PIL's decode on one core (section decode): seconds per run, medium files. */
  readonly decode: { readonly seconds: number; readonly mediumFiles: number; readonly minPasses: number };
  readonly pipeline: { readonly seconds: number; readonly oneCoreSeconds: number; readonly files: number };
  readonly e2eImages: number;
  readonly e2eTimeoutSeconds: number;
  /** The handler against the in-process pipeline, in one process (bench/workers/handler-overhead.ts). */
  readonly handlerOverhead: {
    readonly images: number;
    readonly rounds: number;
    readonly timeoutSeconds: number;
  };
  readonly peers: {
    readonly seconds: number;
    readonly files: number;
    readonly torchVariants: readonly TorchVariant[];
  };
  readonly coldStartRuns: number;
  /** Classifier vs raw session.run: timed seconds per path and batch size (B0, then the null model). */
  readonly classifier: {
    readonly batchSizes: readonly number[];
    readonly seconds: number;
    readonly nullSeconds: number;
    readonly minRuns: number;
  };
  /** B0, B3 and B7 inference (section scaling). */
  readonly scaling: {
    readonly batchSize: number;
    readonly seconds: number;
    readonly warmupRuns: number;
    readonly minRuns: number;
  };
  /** INT8 against FP32 (section int8): timed seconds per run, FP32/INT8 rounds, image counts. */
  readonly int8: {
    readonly seconds: number;
    readonly rounds: number;
    readonly minRuns: number;
    readonly calibrationImages: number;
    readonly b0CalibrationImages: number;
    readonly evaluationImages: number;
  };
  /** Soft limit for the whole run; sections that would start past it are skipped. */
  readonly budgetSeconds: number;
}

export interface TorchVariant {
  readonly name: string;
  readonly batchSize: number;
  readonly channelsLast?: boolean;
}

export const FULL: BenchConfig = {
  quick: false,
  fmaSeconds: 1,
  inference: { batchSizes: [1, 4, 8, 16], threads: [1, 2], seconds: 4, rounds: 2, warmupRuns: 3, minRuns: 5 },
  preprocess: { seconds: 4, counts: { small: 32, medium: 48, large: 8 } },
  decode: { seconds: 4, mediumFiles: 12, minPasses: 2 },
  pipeline: { seconds: 8, oneCoreSeconds: 6, files: 48 },
  e2eImages: 500,
  e2eTimeoutSeconds: 150,
  handlerOverhead: { images: 64, rounds: 5, timeoutSeconds: 300 },
  peers: {
    seconds: 8,
    files: 48,
    torchVariants: [
      { name: 'batch 1', batchSize: 1 },
      { name: 'batch 16', batchSize: 16 },
      { name: 'batch 16, channels_last', batchSize: 16, channelsLast: true },
    ],
  },
  coldStartRuns: 5,
  classifier: { batchSizes: [8, 32, 128], seconds: 3, nullSeconds: 1, minRuns: 3 },
  scaling: { batchSize: 2, seconds: 6, warmupRuns: 1, minRuns: 2 },
  int8: {
    seconds: 4,
    rounds: 2,
    minRuns: 3,
    calibrationImages: 1000,
    b0CalibrationImages: 32,
    evaluationImages: 10_000,
  },
  budgetSeconds: 570,
};

export const QUICK: BenchConfig = {
  quick: true,
  fmaSeconds: 0.2,
  inference: { batchSizes: [1, 4], threads: [1, 2], seconds: 0.3, rounds: 1, warmupRuns: 1, minRuns: 2 },
  preprocess: { seconds: 0.3, counts: { small: 4, medium: 8, large: 2 } },
  decode: { seconds: 0.3, mediumFiles: 2, minPasses: 1 },
  pipeline: { seconds: 0.5, oneCoreSeconds: 0.5, files: 8 },
  e2eImages: 16,
  e2eTimeoutSeconds: 60,
  handlerOverhead: { images: 8, rounds: 1, timeoutSeconds: 90 },
  peers: {
    seconds: 0.5,
    files: 8,
    torchVariants: [{ name: 'batch 2, channels_last', batchSize: 2, channelsLast: true }],
  },
  coldStartRuns: 1,
  classifier: { batchSizes: [2, 8], seconds: 0.2, nullSeconds: 0.1, minRuns: 2 },
  scaling: { batchSize: 1, seconds: 0.3, warmupRuns: 1, minRuns: 1 },
  int8: {
    seconds: 0.3,
    rounds: 1,
    minRuns: 1,
    calibrationImages: 16,
    b0CalibrationImages: 2,
    evaluationImages: 64,
  },
  budgetSeconds: 120,
};

export class SkipSection extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SkipSection';
  }
}

export class Context {
  readonly config: BenchConfig;
  readonly machine: MachineInfo;
  readonly startedAt = performance.now();
  /** Results of this run merged over an earlier results.json (for --only). */
  readonly previous: Results | undefined;
  readonly current: { [K in SectionName]?: SectionData[K] } = {};
  #b0: B0Info | undefined;
  #b0Error: string | undefined;

  constructor(config: BenchConfig, machine: MachineInfo, previous: Results | undefined) {
    this.config = config;
    this.machine = machine;
    this.previous = previous;
  }

  log(message: string): void {
    const t = ((performance.now() - this.startedAt) / 1000).toFixed(1).padStart(6);
    process.stderr.write(`[bench ${t}s] ${message}\n`);
  }

  setB0(info: B0Info | undefined, error?: string): void {
    this.#b0 = info;
    this.#b0Error = error;
  }

  get b0(): B0Info {
    if (!this.#b0) throw new Error(`EfficientNet-B0 is not available: ${this.#b0Error ?? 'not exported'}`);
    return this.#b0;
  }

  /** A section's data from this run, else from the earlier results.json being updated. */
  data<K extends SectionName>(name: K): SectionData[K] | undefined {
    const mine = this.current[name];
    if (mine) return mine as SectionData[K];
    const old = this.previous?.sections[name];
    return old?.status === 'ok' ? (old.data as SectionData[K]) : undefined;
  }

  secondsLeft(): number {
    return this.config.budgetSeconds - (performance.now() - this.startedAt) / 1000;
  }

  /** A child's time-out: what it wants, capped by what the run has left; skips when too little is left. */
  timeoutMs(wantSeconds: number, needSeconds = Math.min(wantSeconds, 10)): number {
    const left = this.secondsLeft();
    if (left < needSeconds) {
      throw new SkipSection(`skipped: the run's ${this.config.budgetSeconds} s time budget is spent`);
    }
    return Math.round(Math.min(wantSeconds, left) * 1000);
  }
}
