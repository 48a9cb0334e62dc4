/**
 * `withCommands`: run shell commands, each its own `RUN` step, with the secrets asked for.
 * The commands are the user's shell text by contract; nothing else is added to them.
 *
 * @module
 */

import { definePlugin, type Diagnostic, run, type Secret } from "../contract.ts";

/** The layer's options. */
export interface Options {
  /** Shell commands, in order. */
  readonly commands: readonly string[];
  /** Secrets the commands need. */
  readonly secretMounts: readonly Secret[];
}

/** The options when none are given. */
export const defaults = { commands: [], secretMounts: [] } satisfies Options;

/** The commands plugin. */
export const commands = definePlugin<Options>({
  name: "commands",
  version: 1,
  validate(options) {
    const problems: Diagnostic[] = [];
    if (options.commands.length === 0) problems.push({ message: "no commands given" });
    options.commands.forEach((command, index) => {
      if (command.trim() === "") problems.push({ message: `command ${index + 1} is empty` });
      if (/^\s*RUN\s/i.test(command)) {
        problems.push({
          message: `command ${index + 1} starts with RUN`,
          hint: "give the shell command alone; imgtool writes the RUN",
        });
      }
      // Quotes and backslashes do not hide it from Dockerfile readers, which take them out
      // of a flag word: '--mount=...' and \--mount=... are refused too.
      if (/^\s*['"\\]*-/.test(command)) {
        problems.push({
          message: `command ${index + 1} starts with -, which a RUN instruction would read as ` +
            "one of its own flags (--mount, --network, --security)",
          hint: "start with the program to run; to pass such words to a shell, write sh -c '...'",
        });
      }
      // Line breaks and control characters are the core's to report (it names the option).
      if (/\\\s*$/.test(command)) {
        problems.push({
          message: `command ${index + 1} ends in \\, which would join the next Dockerfile ` +
            "instruction to it",
          hint: "remove the \\ at the end; to split a long command, give several commands",
        });
      }
    });
    return problems;
  },
  secrets: (options) => options.secretMounts,
  render: (options) => ({
    instructions: options.commands.map((command) =>
      run(command, { secrets: options.secretMounts })
    ),
  }),
}, { module: import.meta.url });

export default commands;
