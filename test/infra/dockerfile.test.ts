import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
// @ts-expect-error: plain JavaScript run by node in the image build, no type declarations
import { pruneToRuntime, runtimeClosure } from '../../functions/runtime-deps.mjs';
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
/** The stage and the stages it is built FROM, nearest first. */
function ancestry(s: Stage): Stage[] {
  const chain = [s];
  for (let parent = stages.find((p) => p.name === s.from); parent; ) {
    chain.push(parent);
    const from = parent.from;
    parent = stages.find((p) => p.name === from);
  }
  return chain;
}
/** The stage a target copies its node_modules from. */
function nodeModulesStage(target: Stage): Stage {
  const name = /COPY --from=(\S+) \S*node_modules/.exec(target.lines.join('\n'))?.[1];
  assert.ok(name, `${target.name} copies node_modules from a stage`);
  return stage(name);
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
    assert.doesNotMatch(deps, /ONNXRUNTIME_NODE_INSTALL|install\.js|curl/);
    assert.match(deps, /--os=linux/);
    assert.match(deps, /--cpu=x64/);
  });

  it('installs into both images only the packages esbuild keeps external, pinned by the lockfile', () => {
    const externals = [...runs(stage('build')).matchAll(/--external:(\S+)/g)].map((m) => m[1]).sort();
    assert.deepEqual(externals, ['onnxruntime-node', 'sharp']);
    for (const target of ['lambda', 'gpu']) {
      const chain = ancestry(nodeModulesStage(stage(target)));
      // The stage that runs `npm ci` for the image first prunes the manifest and lockfile to the externals.
      const install = chain.map(runs).find((r) => /npm ci\b/.test(r));
      assert.ok(install, `${target}: node_modules come from an npm ci`);
      const prune = /node runtime-deps\.mjs ((?:[\w@/.-]+\s*)+)&&[^\n]*npm ci/.exec(install);
      assert.ok(prune, `${target}: runtime-deps.mjs runs before npm ci`);
      assert.deepEqual(prune[1]?.trim().split(/\s+/).sort(), externals, target);
      assert.ok(
        chain.some((st) =>
          st.lines.some((l) => /^COPY .*package-lock\.json.*functions\/runtime-deps\.mjs/.test(l)),
        ),
        `${target}: the lockfile and the script are copied in`,
      );
    }
  });

  it('prunes the real lockfile to the externals and their dependencies, nothing of the CLI', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8'));
    const pruned = pruneToRuntime(pkg, lock, ['onnxruntime-node', 'sharp']);
    assert.deepEqual(pruned.pkg.dependencies, {
      'onnxruntime-node': lock.packages['node_modules/onnxruntime-node'].version,
      sharp: lock.packages['node_modules/sharp'].version,
    });
    const names = Object.keys(pruned.lock.packages).filter((p) => p !== '');
    for (const name of names) {
      const entry = pruned.lock.packages[name];
      // Same version, URL and integrity as the project's lockfile: exactly what was tested.
      for (const field of ['version', 'resolved', 'integrity']) {
        assert.equal(entry[field], lock.packages[name][field], `${name} ${field}`);
      }
    }
    for (const needed of [
      'onnxruntime-node',
      'onnxruntime-common',
      'sharp',
      '@img/sharp-linux-x64',
      '@img/sharp-libvips-linux-x64',
    ]) {
      assert.ok(names.includes(`node_modules/${needed}`), needed);
    }
    // Runtime dependencies of the CLI and the handlers, all inside the bundle.
    for (const bundled of Object.keys(pkg.dependencies).filter(
      (d) => !['onnxruntime-node', 'sharp'].includes(d),
    )) {
      assert.ok(!names.includes(`node_modules/${bundled}`), `${bundled} stays out of node_modules`);
    }
    assert.ok(!names.some((n) => n.includes('@aws-sdk/') || n.endsWith('/zod')), names.join());
    // Every kept package's dependency resolves inside the pruned tree.
    const kept = runtimeClosure(pruned.lock, ['onnxruntime-node', 'sharp']);
    assert.equal(kept.size, names.length);
  });

  it('checks the CUDA provider download against the committed sha256 before unpacking it', () => {
    const chain = ancestry(nodeModulesStage(stage('gpu')));
    const gpuRuns = chain.map(runs).join('\n');
    // No install script reaches the network: the download is explicit, and verified.
    assert.doesNotMatch(gpuRuns, /ONNXRUNTIME_NODE_INSTALL|script\/install\.js/);
    const fetch = gpuRuns.split('\n').find((r) => /curl\b[^&]*https:\/\/api\.nuget\.org\//.test(r));
    assert.ok(fetch, 'the NuGet package is downloaded from nuget.org with curl');
    const download = fetch.search(/curl\b[^&]*-o\s+"\$\{nupkg\}"/);
    const check = fetch.search(/sha256sum --check --strict/);
    const unpack = fetch.search(/unzip\b[^&]*"\$\{nupkg\}"/);
    assert.ok(download >= 0 && check > download && unpack > check, 'download, then check, then unpack');
    assert.match(fetch, /cuda-provider\.sha256/);
    assert.match(fetch, /libonnxruntime_providers_cuda\.so/);
    assert.ok(
      chain.some((st) => st.lines.includes('COPY functions/cuda-provider.sha256 ./')),
      'the checksum file is copied into the stage',
    );
    // The version downloaded is the one onnxruntime-node's own installer would fetch.
    assert.match(fetch, /install-metadata-versions\.js'\)\.nuget\[0\]\.version/);
    const lockVersion = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')).packages[
      'node_modules/onnxruntime-node'
    ].version;
    const sums = readFileSync(join(REPO_ROOT, 'functions/cuda-provider.sha256'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('#'));
    assert.equal(sums.length, 1);
    assert.match(
      sums[0] ?? '',
      new RegExp(
        `^[0-9a-f]{64}  microsoft\\.ml\\.onnxruntime\\.gpu\\.linux\\.${lockVersion.replaceAll('.', '\\.')}\\.nupkg$`,
      ),
      'the checksum names the locked onnxruntime-node version',
    );
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
    const deps = ancestry(stage(depsStage)).map(runs).join('\n');
    assert.match(deps, /npm ci\b[^\n]*--ignore-scripts/);
    // The CUDA 12 provider comes from the Microsoft.ML.OnnxRuntime.Gpu.Linux package, as
    // onnxruntime-node's install.js with ONNXRUNTIME_NODE_INSTALL=cuda12 would take it.
    assert.match(deps, /microsoft\.ml\.onnxruntime\.gpu\.linux/);
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
