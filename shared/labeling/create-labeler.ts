import { availableParallelism } from 'node:os';
import { DEFAULT_IMAGE_LIMITS } from '../image/preprocess.ts';
import { Classifier, type Logger } from '../model/classifier.ts';
import { loadModelBundle } from '../model/manifest.ts';
import { LABELING } from '../settings.ts';
import { ImageLabeler } from './image-labeler.ts';

export interface LabelerOptions {
  readonly modelDir: string;
  readonly executionProviders?: readonly string[];
  readonly intraOpThreads?: number;
  readonly topK?: number;
  readonly batchSize?: number;
  readonly concurrency?: number;
  readonly maxBytes?: number;
  readonly maxPixels?: number;
}

/**
 * Inference threads: the cores the process has, as onnxruntime itself defaults. With
 * idle threads not spinning, 1 and 2 threads come out within run-to-run noise on 2
 * cores when decode shares them (medium JPEGs through labelAll: 56.7 vs 58.6 images/s
 * in bench/RESULTS.md section 3, 56.4 vs 51.9 in another run), while inference alone
 * is 1.8x faster with 2 (section 1).
 */
export function defaultInferenceThreads(cores = availableParallelism()): number {
  return Math.max(1, cores);
}

/** Loads and checks the model, then builds the labeler with the house defaults. */
export async function createImageLabeler(options: LabelerOptions, log?: Logger): Promise<ImageLabeler> {
  const bundle = await loadModelBundle(options.modelDir);
  const classifier = await Classifier.create(
    bundle,
    {
      executionProviders: options.executionProviders ?? ['cpu'],
      intraOpThreads: options.intraOpThreads ?? defaultInferenceThreads(),
    },
    log,
  );
  return new ImageLabeler(classifier, {
    topK: options.topK ?? LABELING.topK,
    batchSize: options.batchSize ?? LABELING.batchSize,
    concurrency: options.concurrency ?? availableParallelism(),
    limits: {
      ...DEFAULT_IMAGE_LIMITS,
      ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
      ...(options.maxPixels === undefined ? {} : { maxPixels: options.maxPixels }),
    },
  });
}
