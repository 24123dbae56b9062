import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CODE } from '../error-codes.ts';
import { ModelError } from '../errors.ts';
import { DEFAULT_MODEL_DIR } from '../paths.ts';

/** Overrides where `labeler model pull` and `labeler model export` keep models by name. */
export const MODELS_DIR_ENV = 'LABELER_MODELS_DIR';

/** What `--model` calls the bundled Fashion-MNIST EfficientNet (models/fashion-efficientnet). */
export const BUNDLED_MODEL_NAME = 'fashion';

/** A model name: the folder name under the models cache (the manifest id's alphabet). */
export const MODEL_NAME = /^[a-z0-9][a-z0-9._-]*$/;

/** Where named models live: $LABELER_MODELS_DIR, else $XDG_CACHE_HOME/labeler/models, else ~/.cache/labeler/models. */
export function modelsCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env[MODELS_DIR_ENV];
  if (explicit) return resolve(explicit);
  return join(
    env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache'),
    'labeler',
    'models',
  );
}

/**
 * The one place a model reference (`--model`, MODEL_DIR) becomes a folder: nothing means
 * the bundled model; an existing path is that folder; otherwise a bare name (efficientnet_b3)
 * is the folder of that name in the models cache, where `labeler model pull` and `labeler
 * model export` put them, and failing that `fashion` (BUNDLED_MODEL_NAME) is the bundled
 * model. A folder of the same name as a pulled model wins, as a path the user typed should.
 */
export function resolveModelDir(ref: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (ref === undefined || ref === '') return DEFAULT_MODEL_DIR;
  const asPath = resolve(ref);
  if (existsSync(asPath) || !MODEL_NAME.test(ref)) return asPath;
  const cache = modelsCacheDir(env);
  const named = join(cache, ref);
  if (existsSync(named)) return named;
  if (ref === BUNDLED_MODEL_NAME) return DEFAULT_MODEL_DIR;
  throw new ModelError(
    CODE.model.notFound,
    `"${ref}" is neither a model folder nor a model named so in ${cache} ` +
      `(labeler model pull ${ref} fetches a model the registry lists; labeler model export makes one)`,
  );
}
