import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The bundled Fashion-MNIST EfficientNet. */
export const DEFAULT_MODEL_DIR = join(PACKAGE_ROOT, 'models', 'fashion-efficientnet');
