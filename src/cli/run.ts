// The process entry point: runs the CLI and turns any error into one line on stderr and exit code 1.
import { main } from './main.js';

main(process.argv).catch((err: unknown) => {
  console.error(`latentkit: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
