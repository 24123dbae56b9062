// Prunes package.json and package-lock.json (in the current directory) to the packages
// that esbuild keeps external, and what they depend on, at the versions, resolved URLs and
// integrity hashes the lockfile pins. `npm ci` then installs exactly those: the images
// hold the bundle plus its native modules, not every runtime dependency of the CLI.
//
//   node runtime-deps.mjs onnxruntime-node sharp && npm ci --omit=dev ...
//
// Plain JavaScript with no imports beyond node:, so it runs in the Docker deps stage before
// anything is installed. test/infra/dockerfile.test.ts runs it against the real lockfile.
import { readFileSync, writeFileSync } from 'node:fs';

/**
 * The lockfile entries (`node_modules/...` paths) that installing `roots` needs: each
 * root's entry and, transitively, every dependency and optional dependency, resolved the
 * way Node.js resolves them (the nearest `node_modules` folder up the tree).
 */
export function runtimeClosure(lock, roots) {
  const packages = lock.packages ?? {};
  const keep = new Set();
  const resolve = (from, name) => {
    let dir = from;
    for (;;) {
      const candidate = `${dir === '' ? '' : `${dir}/`}node_modules/${name}`;
      if (candidate in packages) return candidate;
      if (dir === '') return undefined;
      const cut = dir.lastIndexOf('/node_modules/');
      dir = cut === -1 ? '' : dir.slice(0, cut);
    }
  };
  const visit = (path) => {
    if (keep.has(path)) return;
    keep.add(path);
    const entry = packages[path];
    const deps = { ...entry.dependencies, ...entry.optionalDependencies };
    for (const name of Object.keys(deps)) {
      const found = resolve(path, name);
      // A missing optional dependency is one npm skipped for another platform.
      if (found) visit(found);
      else if (!(name in (entry.optionalDependencies ?? {}))) {
        throw new Error(`${path} depends on ${name}, which the lockfile does not have`);
      }
    }
  };
  for (const root of roots) {
    const path = `node_modules/${root}`;
    if (!(path in packages)) throw new Error(`${root} is not in package-lock.json`);
    visit(path);
  }
  return keep;
}

/** The package.json and package-lock.json that install only `roots`, at their locked versions. */
export function pruneToRuntime(pkg, lock, roots) {
  const keep = runtimeClosure(lock, roots);
  const dependencies = Object.fromEntries(
    roots.map((root) => [root, lock.packages[`node_modules/${root}`].version]),
  );
  const rootEntry = { name: pkg.name, version: pkg.version, dependencies };
  const packages = { '': rootEntry };
  for (const path of [...keep].sort()) {
    // Dev flags described the whole project's tree; here everything kept is production.
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = lock.packages[path];
    packages[path] = entry;
  }
  return {
    pkg: { name: pkg.name, version: pkg.version, private: true, type: pkg.type, dependencies },
    lock: {
      name: pkg.name,
      version: pkg.version,
      lockfileVersion: lock.lockfileVersion,
      requires: true,
      packages,
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const roots = process.argv.slice(2);
  if (roots.length === 0) throw new Error('usage: node runtime-deps.mjs PACKAGE...');
  const { pkg, lock } = pruneToRuntime(
    JSON.parse(readFileSync('package.json', 'utf8')),
    JSON.parse(readFileSync('package-lock.json', 'utf8')),
    roots,
  );
  writeFileSync('package.json', `${JSON.stringify(pkg, null, 2)}\n`);
  writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
  for (const [name, version] of Object.entries(pkg.dependencies)) console.log(`${name}@${version}`);
  console.log(`${Object.keys(lock.packages).length - 1} packages in the runtime tree`);
}
