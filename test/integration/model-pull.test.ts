import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readManifest } from '../../shared/model/manifest.ts';
import { DEFAULT_MODEL_DIR } from '../../shared/paths.ts';
import { jsonLines, runCli } from '../helpers/cli.ts';

const SAMPLE = join(DEFAULT_MODEL_DIR, 'samples', 'test-00000.png');

/**
 * Serves one file on 127.0.0.1 with HTTP Range support. A path starting /cut/ sends the
 * full Content-Length but only the first half of the bytes, then drops the connection,
 * to whoever asks without a Range header: an interrupted download.
 */
function serve(file: Buffer): Promise<{ server: Server; url: string; ranges: string[] }> {
  const ranges: string[] = [];
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/missing/')) {
      res.writeHead(404).end();
      return;
    }
    const range = req.headers.range;
    ranges.push(range ?? '');
    const match = range ? /^bytes=(\d+)-$/.exec(range) : null;
    if (match) {
      const start = Number(match[1]);
      res.writeHead(206, {
        'content-length': file.length - start,
        'content-range': `bytes ${start}-${file.length - 1}/${file.length}`,
      });
      res.end(file.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': file.length });
    if (req.url?.startsWith('/cut/')) {
      res.write(file.subarray(0, Math.floor(file.length / 2)), () => {
        // Let the half reach the client before the connection drops.
        setTimeout(() => res.socket?.destroy(), 200);
      });
      return;
    }
    res.end(file);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}`, ranges });
    });
  });
}

describe('labeler model pull (a local HTTP server on 127.0.0.1)', () => {
  let dir: string;
  let file: Buffer;
  let sha256: string;
  let http: Awaited<ReturnType<typeof serve>>;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labeler-pull-'));
    // The file made here: the bundled model's graph, published under a name of its own.
    file = await readFile(join(DEFAULT_MODEL_DIR, 'model.onnx'));
    sha256 = createHash('sha256').update(file).digest('hex');
    http = await serve(file);
    await copyFile(join(DEFAULT_MODEL_DIR, 'labels.txt'), join(dir, 'fashion-labels.txt'));
    const bundled = await readManifest(DEFAULT_MODEL_DIR);
    const entry = (path: string, pinned: string) => ({
      url: `${http.url}${path}`,
      sha256: pinned,
      size: file.length,
      labelsFile: 'fashion-labels.txt',
      manifest: {
        version: 'pinned-1',
        // The names are left out: pull reads them from the graph.
        input: { ...bundled.input, name: undefined },
        output: { kind: bundled.output.kind },
      },
    });
    await writeFile(
      join(dir, 'registry.json'),
      JSON.stringify({
        schemaVersion: 1,
        models: {
          fashion: entry('/whole/model.onnx', sha256),
          'fashion-cut': entry('/cut/model.onnx', sha256),
          'fashion-tampered': entry('/whole/model.onnx', 'f'.repeat(64)),
          'fashion-gone': entry('/missing/model.onnx', sha256),
        },
      }),
    );
    env = { LABELER_MODEL_REGISTRY: join(dir, 'registry.json'), LABELER_MODELS_DIR: join(dir, 'cache') };
  });
  after(async () => {
    http.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('downloads, verifies and writes a manifest; label --model <name> then uses it', async () => {
    const run = await runCli(['model', 'pull', 'fashion'], env);
    assert.equal(run.code, 0, run.stderr);
    const result = jsonLines(run.stdout)[0] as { dir: string; sha256: string; downloaded: number };
    assert.equal(result.dir, join(dir, 'cache', 'fashion'));
    assert.equal(result.downloaded, file.length);
    const manifest = await readManifest(result.dir);
    assert.equal(manifest.sha256, sha256);
    assert.equal(manifest.id, 'fashion');
    assert.equal(manifest.input.name, 'input', 'read from the graph');
    assert.equal(manifest.output.name, 'logits', 'read from the graph');

    const label = await runCli(['label', '--model', 'fashion', '--format', 'jsonl', SAMPLE], env);
    assert.equal(label.code, 0, label.stderr);
    const row = jsonLines(label.stdout)[0] as { status: string; labels: Array<{ label: string }> };
    assert.equal(row.status, 'ok');
    assert.equal(row.labels[0]?.label, 'Ankle boot');
    assert.match(label.stderr, /model fashion\)/);
  });

  it('resumes an interrupted download with a Range request from the bytes it kept', async () => {
    const out = join(dir, 'resumed');
    const first = await runCli(['model', 'pull', 'fashion-cut', '--out', out], env);
    assert.equal(first.code, 3, first.stderr);
    assert.match(first.stderr, /\[model\/download-failed\].*run the same pull again to resume/);
    const kept = (await stat(join(out, 'model.onnx.partial'))).size;
    assert.ok(kept > 0 && kept < file.length, `kept ${kept} of ${file.length} bytes`);
    await assert.rejects(stat(join(out, 'manifest.json')), { code: 'ENOENT' });

    http.ranges.length = 0;
    const second = await runCli(['model', 'pull', 'fashion-cut', '--out', out], env);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(http.ranges, [`bytes=${kept}-`]);
    const result = jsonLines(second.stdout)[0] as { resumedFrom: number; downloaded: number };
    assert.equal(result.resumedFrom, kept);
    assert.equal(result.downloaded, file.length - kept);
    assert.deepEqual(await readFile(join(out, 'model.onnx')), file);
    await assert.rejects(stat(join(out, 'model.onnx.partial')), { code: 'ENOENT' });
    const label = await runCli(['label', '--model', out, '--format', 'jsonl', SAMPLE], env);
    assert.equal(label.code, 0, label.stderr);
  });

  it('refuses a file whose sha256 differs from the pin (model/checksum-mismatch) and keeps nothing', async () => {
    const out = join(dir, 'tampered');
    const run = await runCli(['model', 'pull', 'fashion-tampered', '--out', out], env);
    assert.equal(run.code, 3, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`\\[model/checksum-mismatch\\] .*sha256 ${sha256}; the registry pins f{64}`),
    );
    for (const name of ['manifest.json', 'model.onnx', 'model.onnx.partial']) {
      await assert.rejects(stat(join(out, name)), { code: 'ENOENT' }, name);
    }
  });

  it('reports an HTTP error as model/download-failed', async () => {
    const run = await runCli(['model', 'pull', 'fashion-gone', '--out', join(dir, 'gone')], env);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /\[model\/download-failed\] .*HTTP 404/);
  });

  it('refuses a name the registry does not list (model/unknown-name), naming those it does', async () => {
    const run = await runCli(['model', 'pull', 'efficientnet_b9'], env);
    assert.equal(run.code, 3, run.stderr);
    assert.match(
      run.stderr,
      /\[model\/unknown-name\] .*lists no model "efficientnet_b9" \(it lists: fashion, /,
    );
  });

  it('reads the registry shipped in the repo', async () => {
    const run = await runCli(['model', 'pull', 'no-such-model'], { LABELER_MODELS_DIR: join(dir, 'cache') });
    assert.equal(run.code, 3, run.stderr);
    assert.match(
      run.stderr,
      /models\/registry\.json lists no model "no-such-model" \(it lists: efficientnet_b0-/,
    );
  });
});
