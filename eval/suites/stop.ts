/**
 * Stop sequences of the HumanEval family: a new top-level statement ends the function body. They only
 * match at column 0 (a newline followed directly by the keyword), so indented code is never cut.
 * These are the Codex paper's ("\nclass", "\ndef", "\n#", "\nif", "\nprint") with "\nif" narrowed to
 * the main guard, plus "\n@" (a decorator starts a new definition) and "\n```" (a closing markdown fence).
 */
export const HUMANEVAL_STOP = ['\ndef ', '\nclass ', '\nif __name__', '\nprint(', '\n#', '\n@', '\n```'];

/** MBPP's few-shot format closes each answer with [DONE]; a new [BEGIN] or task also ends it. */
export const MBPP_STOP = ['[DONE]', '\n[BEGIN]', '\nYou are an expert Python programmer'];

/** Single-line infilling: the middle is one line. */
export const SINGLE_LINE_STOP = ['\n'];

/**
 * Cut `text` at the earliest stop sequence. `keep` lists stops that stay in the result (the newline that
 * ends a single-line infill is part of the line).
 */
export function truncateAtStop(text: string, stops: readonly string[], keep: readonly string[] = []): string {
  let cut = text.length;
  let kept = 0;
  for (const s of stops) {
    if (s.length === 0) continue;
    const i = text.indexOf(s);
    if (i >= 0 && i < cut) {
      cut = i;
      kept = keep.includes(s) ? s.length : 0;
    }
  }
  return text.slice(0, cut + kept);
}
