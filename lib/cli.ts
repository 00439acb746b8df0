#!/usr/bin/env node
/**
 * The `seqtune` command line. User errors (SeqtuneError) print one line and exit 1 (2 for bad
 * usage), as do the system's file errors (a full disk, a permission) that reach here unwrapped:
 * they name their path, and a stack trace would not help the user. Anything else is a bug and
 * keeps its stack trace.
 */
import { isSeqtuneError } from './errors';
import { commands } from './cli/commands';
import { parseCommandArgs } from './cli/command';

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: seqtune <command> [options]   (seqtune <command> --help for its options)',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`seqtune: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  try {
    const { values, positionals } = parseCommandArgs(command, rest);
    if (values.help) {
      console.log(`${command.summary}\nusage: ${command.usage}`);
      return 0;
    }
    return await command.run(values, positionals);
  } catch (error) {
    if (isSeqtuneError(error)) {
      console.error(`seqtune ${command.name}: error: ${error.message}`);
      return error.code === 'ERR_ARGUMENT' ? 2 : 1;
    }
    const system = error as NodeJS.ErrnoException;
    if (typeof system.syscall === 'string' && typeof system.code === 'string' && /^E[A-Z]+$/.test(system.code)) {
      console.error(`seqtune ${command.name}: error: ${system.message}`);
      return 1;
    }
    throw error;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 70;
    },
  );
}
