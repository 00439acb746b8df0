/**
 * The Seq-Instruct prompts (docs/method.md §2) and the parsers of the generator's answers.
 *
 * The instruction prefixes, the system prompt and the templates are the paper's, verbatim (typos
 * included: they are what the generator was shown). The few-shot examples are this project's own,
 * on the topics the paper lists (the authors' texts are not reproduced), in the same shape: each
 * classification example ends with "So the option is: X.", each rewrite example with
 * "#New Instruction#: ...###".
 */
import { HostRng } from '../rng';
import { SeqOption } from './records';

export const CLASSIFY_SYSTEM =
  'You are an assistant to classify the correct choices for the given instruction. Please follow strictly the format of the few shot examples given and provide explanation.';

export const CLASSIFY_PREFIX = `Given the original instruction, you should propose a new instruction based on it by doing one of following things:
A. Decompose it into two tasks.
B. Add a prefix task.
C. Add a suffix task.
D. Keep as original version. (Choose this if the original instruction is already sufficient)
You should decide which option is suitable for the input instruction.`;

export function classifyTemplate(text: string): string {
  return `\nThe instruction is: "${text}". \n\nLet's think step by step.`;
}

const REWRITE_REST = `The response to the new instruction should be the same or similar to the original instruction, including the format. The added instruction should have its own explicit response, so something like “reading”, "familiarizing", "repeating", “analyzing” or "understanding" the original instruction is not considered a good choice.
Your rewriting cannot omit the non-text parts such as the table and code in #Given Prompt#:, and should only modify the instruction part and keep all the key details such as options, hypothesis and questions.
Provide your explanation before having the final instruction by thinking step by step.
`;
const CURLY_LAST = 'You must generate your new instruction with prefix “#New Instruction#: ” and end your answer with “###”.';
const STRAIGHT_LAST = 'You must generate your new instruction with prefix "#New Instruction#: " and end your answer with "###".';
const NOT_VALID_PREFIX = 'Adding familiarize, read or understand the original given information is not counted as valid prefix task.';

export const REWRITE_PREFIX: Record<'A' | 'B' | 'C', string> = {
  A: `Your objective is to decompose the given instruction (#Original Instruction#) into two logical related sequential instructions (#New Instruction#) by either make the original instruction more complex or clear to handle. \n${REWRITE_REST}${CURLY_LAST}`,
  B: `Your objective is to add prefix task to the given instruction (#Original Instruction#) to form a sequential related instruction (#New Instruction#). ${NOT_VALID_PREFIX}\n${REWRITE_REST}${CURLY_LAST}`,
  C: `Your objective is to add suffix task to the given instruction (#Original Instruction#) to form a sequential related instruction (#New Instruction#). ${NOT_VALID_PREFIX}\n${REWRITE_REST}${STRAIGHT_LAST}`,
};

const REWRITE_TASK: Record<'A' | 'B' | 'C', string> = {
  A: "You task is to decompose the instruction into two sequential instructions that will eventually lead to the answer the original instructions. Let's think step by step. ",
  B: "Now adding a prefix task. Let's think step by step. ",
  C: "Now adding a suffix task. Let's think step by step. ",
};

export function rewriteTemplate(option: 'A' | 'B' | 'C', text: string): string {
  return `#Original Instruction#: '${text}' \n${REWRITE_TASK[option]}`;
}

export const CLASSIFY_FEW_SHOTS: readonly string[] = [
  `The instruction is: "Name the particles that make up an atom.". \n\nThe instruction asks for a short list. A natural follow-up task is to explain the role of each particle, which adds a clear, checkable step after the list. So the option is: C.`,
  `The instruction is: "A TV show has 22 episodes per season and 5 seasons. How many episodes are there in total?". \n\nThis is a single arithmetic question whose answer is a number; it is already complete and adding tasks would not help. So the option is: D.`,
  `The instruction is: "Find the sentence that mentions the city's founding year in the following paragraph and state the year. Paragraph: The town grew around a river crossing; it was founded in 1642 and became a market centre.". \n\nThe instruction mixes two jobs: locating a sentence and extracting a value. It can be split into first quoting the sentence, then giving the year. So the option is: A.`,
  `The instruction is: "Classify the sentiment of this tweet as positive or negative: 'Missed my bus again, great start to the week.'". \n\nThe task is a direct classification with a fixed label set; it is sufficient as it stands. So the option is: D.`,
  `The instruction is: "Write three tips for sleeping better.". \n\nBefore giving tips it helps to first state the common causes of poor sleep, a prefix task with its own answer that the tips can then address. So the option is: B.`,
];

export const REWRITE_FEW_SHOTS: Record<'A' | 'B' | 'C', readonly string[]> = {
  A: [
    `#Original Instruction#: 'Describe the structure of a water molecule.' \nThe description can be split into naming the atoms and bonds first, then describing the shape.\n#New Instruction#: First list the atoms in a water molecule and the bonds between them, then describe the molecule's shape and bond angle.###`,
    `#Original Instruction#: 'Is this tweet sarcastic? "Love waiting an hour for cold coffee."' \nDeciding sarcasm is easier after stating the literal meaning.\n#New Instruction#: First state the literal meaning of the tweet "Love waiting an hour for cold coffee.", then decide whether it is sarcastic and explain why.###`,
    `#Original Instruction#: 'A plate costs $4 and a cup costs $2. How much do 3 plates and 2 cups cost? Options: (a) 14 (b) 16 (c) 12' \nThe problem can be solved in two steps before picking an option.\n#New Instruction#: First compute the cost of 3 plates and of 2 cups separately, then add them and choose the matching option from (a) 14 (b) 16 (c) 12.###`,
  ],
  B: [
    `#Original Instruction#: 'Summarize the article below in two sentences. Article: City council approved a new bike lane network after a year of public consultations.' \nA useful prefix is to extract the key facts, which the summary then uses.\n#New Instruction#: First list the key facts of the article below, then summarize it in two sentences. Article: City council approved a new bike lane network after a year of public consultations.###`,
    `#Original Instruction#: 'Name the note that is one whole step above C on a piano keyboard.' \nA prefix task can ask for the notes around C first.\n#New Instruction#: First name the white keys from C to G on a piano keyboard, then name the note that is one whole step above C.###`,
    `#Original Instruction#: 'Write a positive review of a movie you enjoyed.' \nChoosing and briefly introducing the movie is a prefix with its own answer.\n#New Instruction#: First name a movie and give a one-line plot summary, then write a positive review of it.###`,
  ],
  C: [
    `#Original Instruction#: 'Who was Julius Caesar?' \nAfter the short biography, a suffix can ask for his lasting influence.\n#New Instruction#: Who was Julius Caesar? After answering, explain one way his rule still influences the modern world.###`,
    `#Original Instruction#: 'Give three synonyms for "to apologize".' \nA suffix task can ask to use one of them in a sentence.\n#New Instruction#: Give three synonyms for "to apologize", then use one of them in an example sentence.###`,
    `#Original Instruction#: 'Premise: A man is playing a guitar on stage. Hypothesis: A man is performing music. Does the premise entail the hypothesis?' \nA suffix can ask for the justification of the label.\n#New Instruction#: Premise: A man is playing a guitar on stage. Hypothesis: A man is performing music. Does the premise entail the hypothesis? Then explain which words in the premise support your answer.###`,
  ],
};

/** The classification messages for one instruction text (few-shots shuffled by `rng`). */
export function classifyMessages(text: string, rng: HostRng) {
  const shots = rng.shuffle([...CLASSIFY_FEW_SHOTS]).join('\n\n');
  return [
    { role: 'system' as const, content: CLASSIFY_SYSTEM },
    { role: 'user' as const, content: `${CLASSIFY_PREFIX}\n\n${shots}\n\n${classifyTemplate(text)}` },
  ];
}

/** The user-only rewrite message for option A, B or C. */
export function rewriteMessages(option: 'A' | 'B' | 'C', text: string, rng: HostRng) {
  const shots = rng.shuffle([...REWRITE_FEW_SHOTS[option]]).join('\n\n');
  return [{ role: 'user' as const, content: `${REWRITE_PREFIX[option]}\n\n${shots}\n\n${rewriteTemplate(option, text)}` }];
}

function lastMatch(text: string, pattern: RegExp): RegExpExecArray | null {
  let last: RegExpExecArray | null = null;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) last = m;
  return last;
}

/**
 * The chosen option, or null when none is found. Same cues as the paper's parser ("option X",
 * then a bare "X.", then the keywords), but each takes the LAST occurrence: the answer ends with
 * "So the option is: X.", while an echoed option list ("A. Decompose ...") comes earlier and would
 * otherwise win. The paper falls back to D silently; here null lets the caller count the failure.
 */
export function parseOption(completion: string): SeqOption | null {
  const explicit = lastMatch(completion, /option(?:\s+is)?\s*:?\s*\(?([ABCD])\b/gi);
  if (explicit) return explicit[1].toUpperCase() as SeqOption;
  const bare = lastMatch(completion, /(?:^|[^A-Za-z])([ABCD])\./g);
  if (bare) return bare[1] as SeqOption;
  const keyword = lastMatch(completion.toLowerCase(), /(prefix task|suffix task|decompos)/g);
  if (keyword) return ({ 'prefix task': 'B', 'suffix task': 'C', decompos: 'A' } as const)[keyword[1] as 'prefix task' | 'suffix task' | 'decompos'];
  return null;
}

/**
 * The new instruction: the text after the last "#New Instruction#" (falling back to "new
 * instruction"), cut at "###", stripped of ':', '#', spaces and newlines at both ends, then (as the
 * paper's post-processing does) cut at "explanation:" and stripped of quotes. Null if nothing is left.
 */
export function parseNewInstruction(completion: string): string | null {
  const lower = completion.toLowerCase();
  let at = lower.lastIndexOf('#new instruction#');
  let skip = '#new instruction#'.length;
  if (at < 0) {
    at = lower.lastIndexOf('new instruction');
    skip = 'new instruction'.length;
  }
  if (at < 0) return null;
  let text = completion.slice(at + skip);
  const end = text.indexOf('###');
  if (end >= 0) text = text.slice(0, end);
  text = text.replace(/^[:#\s]+|[:#\s]+$/g, '');
  const explanation = text.toLowerCase().indexOf('explanation:');
  if (explanation >= 0) text = text.slice(0, explanation);
  text = text.replace(/^["'“”\s]+|["'“”\s]+$/g, '');
  return text === '' ? null : text;
}
