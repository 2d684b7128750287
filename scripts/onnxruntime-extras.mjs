// Runs onnxruntime-node's own download of the binaries it does not bundle (on Linux x64: the CUDA and
// TensorRT execution providers, from NuGet), but lets the install succeed when that download cannot
// happen (no network, a proxy, NuGet down): CPU inference needs none of those files.
//
// package.json's allowScripts denies onnxruntime-node's postinstall, because npm fails the whole
// install when it fails offline; this script, run from our `prepare` (so only in a checkout of
// latentkit, never in a project that merely depends on it), runs the same script instead. Its
// choice of what to fetch is untouched: ONNXRUNTIME_NODE_INSTALL=skip | cuda12 works as documented
// by onnxruntime-node, and with it unset you get exactly what onnxruntime-node installs by default.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let script;
try {
  script = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json')), 'script', 'install.js');
} catch {
  process.exit(0); // not installed (e.g. --omit): nothing to add to
}

// onnxruntime-node skips itself when it believes it is being developed in its own repository,
// which it infers from npm's variables for the package being installed — here, ours.
const env = { ...process.env };
delete env.npm_package_json;
delete env.npm_config_local_prefix;

const r = spawnSync(process.execPath, [script], { env, encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'] });
if (r.status !== 0) {
  const why = (r.stderr.match(/^\w*Error: .*$/m)?.[0] ?? r.error?.message ?? `exit ${r.status}`).trim();
  console.warn(`latentkit: onnxruntime-node's GPU execution providers were not downloaded (${why}); CPU inference works.`);
  console.warn('latentkit: to fetch them later, run `npm run onnxruntime-extras` online; to stop trying, set ONNXRUNTIME_NODE_INSTALL=skip.');
}
