/** Every CLI command, in the order `seqtune --help` lists them. */
import { augmentCommand } from './augment';
import { Command } from './command';
import { demoCommand } from './demo';
import { downloadCommand } from './download';
import { evalCommand } from './eval';
import { generateCommand } from './generate';
import { infoCommand } from './info';
import { initModelCommand } from './init-model';
import { mergeCommand } from './merge';
import { trainCommand } from './train';

export const commands: Command[] = [demoCommand, infoCommand, initModelCommand, downloadCommand, augmentCommand, trainCommand, generateCommand, mergeCommand, evalCommand];
