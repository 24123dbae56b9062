import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IgnoreMode } from 'aws-cdk-lib';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import type { ContainerImage } from 'aws-cdk-lib/aws-ecs';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';

/** The repository root: the Docker build context of functions/Dockerfile. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The Dockerfile every container of the pipeline is built from. */
export const DOCKERFILE = 'functions/Dockerfile';

/** The bundled model, relative to the repository root. */
export const DEFAULT_MODEL_DIR = 'models/fashion-efficientnet';

/** Image CMDs: Lambda handler names resolved under /var/task, and the GPU worker's script. */
export const HANDLERS = {
  classify: 'functions/classify/handler.handler',
  planJob: 'functions/plan-job/handler.handler',
  query: 'functions/query/handler.handler',
  gpuWorker: 'functions/gpu-worker/main.mjs',
} as const;

export interface LabelerImageProps {
  /**
   * Model folder baked into the images at /opt/model, relative to the repository root.
   * @default 'models/fashion-efficientnet'
   */
  readonly modelDir?: string;
}

/**
 * The build recipe of the pipeline's images: one Dockerfile, two targets.
 *
 * The build context is the repository root, so the asset is staged from an
 * allow-list: only what the Dockerfile copies reaches cdk.out (never node_modules,
 * cdk.out, .git, caches or other models). The same list is in /.dockerignore for
 * plain `docker build`; CDK reads that file too and appends these patterns.
 */
export class LabelerImage {
  readonly modelDir: string;

  constructor(props: LabelerImageProps = {}) {
    this.modelDir = (props.modelDir ?? DEFAULT_MODEL_DIR).replace(/\/+$/, '');
    if (!/^models\/[A-Za-z0-9._-]+$/.test(this.modelDir)) {
      throw new Error(`modelDir must be a folder directly under models/, got "${this.modelDir}"`);
    }
  }

  /** Patterns (Docker ignore syntax, last match wins) deciding what is staged. */
  get exclude(): string[] {
    return [
      '*',
      '!package.json',
      '!package-lock.json',
      '!tsconfig.json',
      '!shared',
      '!functions',
      `!${this.modelDir}`,
      '**/node_modules',
      '**/*.test.ts',
      `${this.modelDir}/samples`,
    ];
  }

  private assetOptions(target: 'lambda' | 'gpu') {
    return {
      file: DOCKERFILE,
      target,
      buildArgs: { MODEL_DIR: this.modelDir },
      platform: Platform.LINUX_AMD64,
      ignoreMode: IgnoreMode.DOCKER,
      exclude: this.exclude,
    };
  }

  /** The `lambda` target with the CMD set to one handler; all functions share one image. */
  lambdaCode(handler: string): lambda.DockerImageCode {
    return lambda.DockerImageCode.fromImageAsset(REPO_ROOT, {
      ...this.assetOptions('lambda'),
      cmd: [handler],
    });
  }

  /** The `gpu` target (CUDA 12 + cuDNN 9, onnxruntime-node with the CUDA execution provider). */
  gpuImage(): ContainerImage {
    return ecs.ContainerImage.fromAsset(REPO_ROOT, this.assetOptions('gpu'));
  }
}

/** The sha256 the GPU image checks its CUDA provider download against (docs/DEPLOY.md). */
export const CUDA_PROVIDER_SHA256 = 'functions/cuda-provider.sha256';

/**
 * Whether that file holds a real digest: it is committed as a placeholder (all zeros) where no
 * network could reach the package, and the GPU image build then stops at the check.
 */
export function cudaProviderPinned(): boolean {
  const lines = readFileSync(join(REPO_ROOT, CUDA_PROVIDER_SHA256), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'));
  return lines.length > 0 && lines.every((line) => /^[0-9a-f]{64}\s/.test(line) && !/^0{64}\s/.test(line));
}
