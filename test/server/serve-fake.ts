// `latentkit serve` on the engine stand-in, as a child process for the durability test:
// node --import tsx test/server/serve-fake.ts --data DIR [other serve flags]. Prints "LISTENING <url>".
import { Command } from 'commander';
import { registerServe, startServe, type ServeFlags } from '../../src/cli/serve.js';
import { FakeEngine } from './fake-engine.js';

const program = new Command('serve-fake');
registerServe(program);
const serveCmd = program.commands.find((c) => c.name() === 'serve')!;
serveCmd.action(async (flags: ServeFlags) => {
  const { url } = await startServe(flags, (host) => new FakeEngine({ host }));
  console.log(`LISTENING ${url}`);
});
await program.parseAsync(['node', 'serve-fake', 'serve', '--port', '0', ...process.argv.slice(2)]);
