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
  /** Refuse to fall back to the CPU when a requested provider cannot load. @default false */
  readonly requireProvider?: boolean;
  readonly topK?: number;
  readonly batchSize?: number;
  readonly concurrency?: number;
  readonly maxBytes?: number;
  readonly maxPixels?: number;
}

/** Loads and checks the model, then builds the labeler with the house defaults. */
export async function createImageLabeler(options: LabelerOptions, log?: Logger): Promise<ImageLabeler> {
  const bundle = await loadModelBundle(options.modelDir);
  const classifier = await Classifier.create(
    bundle,
    {
      executionProviders: options.executionProviders ?? ['cpu'],
      ...(options.intraOpThreads === undefined ? {} : { intraOpThreads: options.intraOpThreads }),
      ...(options.requireProvider ? { requireProvider: true } : {}),
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
