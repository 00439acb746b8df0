/** Every CLI command, in the order `seqtune --help` lists them. */
import { Command } from './command';
import { infoCommand } from './info';

export const commands: Command[] = [infoCommand];
