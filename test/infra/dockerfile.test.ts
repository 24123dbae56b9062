import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_MODEL_DIR, DOCKERFILE, HANDLERS, REPO_ROOT } from '../../infra/image.ts';

interface Stage {
  readonly from: string;
  readonly name: string;
  readonly lines: readonly string[];
}

/** Splits the Dockerfile into stages (continuation lines joined, comments dropped). */
function parseStages(text: string): Stage[] {
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: { from: string; name: string; lines: string[] }[] = [];
  for (const line of instructions) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ from: from[1] ?? '', name: from[2] ?? '', lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

const stages = parseStages(readFileSync(join(REPO_ROOT, DOCKERFILE), 'utf8'));
function stage(name: string): Stage {
  const found = stages.find((s) => s.name === name);
  assert.ok(found, `stage ${name} exists`);
  return found;
}
/** The RUN instructions of a stage. */
function runs(s: Stage): string {
  return s.lines.filter((l) => /^RUN\s/i.test(l)).join('\n');
}

describe('functions/Dockerfile', () => {
  it('has the build, lambda and gpu stages', () => {
    for (const name of ['build', 'lambda', 'gpu']) stage(name);
  });

  it('installs with the ONNX Runtime download skipped and bundles the entry points with esbuild', () => {
    const build = runs(stage('build'));
    // npm 11 ignores --onnxruntime-node-install; only --ignore-scripts stops the CUDA download.
    assert.match(build, /npm ci\b[^\n]*--ignore-scripts/);
    assert.doesNotMatch(build, /onnxruntime-node-install/);
    assert.match(build, /esbuild/);
    for (const entry of [
      'classify/handler.ts',
      'plan-job/handler.ts',
      'query/handler.ts',
      'gpu-worker/main.ts',
    ]) {
      assert.ok(build.includes(`functions/${entry}`), `bundles ${entry}`);
    }
    assert.match(build, /--external:onnxruntime-node/);
    assert.match(build, /--external:sharp/);
    assert.match(build, /--format=esm/);
    assert.match(build, /--out-extension:\.js=\.mjs/);
  });

  it('builds the lambda target on the Node.js 24 Lambda base image with linux-x64 native modules', () => {
    const lambda = stage('lambda');
    assert.equal(lambda.from, 'public.ecr.aws/lambda/nodejs:24');
    const depsStage = /COPY --from=(\S+) \S*node_modules/.exec(lambda.lines.join('\n'))?.[1];
    assert.ok(depsStage, 'lambda copies production node_modules from a stage');
    const deps = runs(stage(depsStage));
    assert.match(deps, /--omit=dev/);
    assert.match(deps, /npm ci\b[^\n]*--ignore-scripts/);
    assert.doesNotMatch(deps, /ONNXRUNTIME_NODE_INSTALL|install\.js/);
    assert.match(deps, /--os=linux/);
    assert.match(deps, /--cpu=x64/);
  });

  it('bakes the model into /opt/model from the MODEL_DIR build arg, defaulting to the bundled model', () => {
    const text = readFileSync(join(REPO_ROOT, DOCKERFILE), 'utf8');
    assert.match(text, new RegExp(`^ARG MODEL_DIR=${DEFAULT_MODEL_DIR}$`, 'm'));
    for (const name of ['lambda', 'gpu']) {
      const lines = stage(name).lines;
      assert.ok(lines.includes('ARG MODEL_DIR'), `${name} re-declares MODEL_DIR`);
      assert.ok(
        lines.some((l) => /^COPY \$\{MODEL_DIR\}\/? \/opt\/model\/?$/.test(l)),
        `${name} copies the model`,
      );
    }
  });

  it('builds the gpu target on CUDA 12 with cuDNN 9 and the cuda12 ONNX Runtime install', () => {
    const gpu = stage('gpu');
    assert.match(gpu.from, /^nvidia\/cuda:12\.\d+(\.\d+)?-cudnn-runtime-ubuntu\d{2}\.04$/);
    const depsStage = /COPY --from=(\S+) \S*node_modules/.exec(gpu.lines.join('\n'))?.[1];
    assert.ok(depsStage);
    const deps = runs(stage(depsStage));
    assert.match(deps, /npm ci\b[^\n]*--ignore-scripts/);
    // The one script that runs: onnxruntime-node's own install, asked for the CUDA 12 provider.
    assert.match(deps, /ONNXRUNTIME_NODE_INSTALL=cuda12 node script\/install\.js/);
    assert.ok(
      gpu.lines.some((l) => /^COPY --from=\S+ \S*\/bin\/node /.test(l)),
      'Node.js is installed',
    );
  });

  it('starts the classify handler on Lambda and the GPU worker script on ECS', () => {
    assert.ok(stage('lambda').lines.includes(`CMD ["${HANDLERS.classify}"]`));
    assert.ok(stage('gpu').lines.includes(`CMD ["node", "${HANDLERS.gpuWorker}"]`));
  });
});
