/**
 * The terminal side of CLI logins: prompts on stderr (stdout carries the ExecCredential),
 * a password read without echo, and opening the user's browser.
 *
 * A prompter exists only when stdin is a terminal: kubectl passes its terminal to an exec
 * plugin in interactive use, and a plugin run from a script gets none, so it fails with a
 * message instead of hanging on a prompt nobody sees.
 */
import { spawn } from 'node:child_process';
import type { Prompter } from './login.js';

export function terminalPrompter(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): Prompter | undefined {
  if (!input.isTTY) return undefined;
  return {
    readLine: (question) => readFromTerminal(input, output, question, true),
    readSecret: (question) => readFromTerminal(input, output, question, false),
  };
}

function readFromTerminal(input: NodeJS.ReadStream, output: NodeJS.WriteStream, question: string, echo: boolean): Promise<string> {
  output.write(question);
  input.setRawMode(true);
  input.resume();
  input.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (error?: Error): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
      if (error === undefined) resolve(text);
      else reject(error);
    };
    const onData = (chunk: string): void => {
      for (const character of chunk) {
        if (character === '\r' || character === '\n') return finish();
        if (character === '\u0003' || character === '\u0004') return finish(new Error('login cancelled'));
        if (character === '\u007f' || character === '\b') {
          if (text.length > 0) {
            text = [...text].slice(0, -1).join('');
            if (echo) output.write('\b \b');
          }
          continue;
        }
        text += character;
        if (echo) output.write(character);
      }
    };
    input.on('data', onData);
  });
}

/** Opens `url` in the default browser, best effort (the URL is also printed). */
export function openBrowser(url: string): void {
  const [command, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(command, args, { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // No browser opener: the printed URL is the fallback.
  }
}
