/** Language of a file from its extension; "text" when unknown (kept, but not parsed). */
const BY_EXTENSION: Record<string, string> = {
  py: 'python',
  pyi: 'python',
  js: 'javascript',
  mjs: 'javascript',
  ts: 'typescript',
  c: 'c',
  h: 'c',
  cc: 'cpp',
  cpp: 'cpp',
  hpp: 'cpp',
  rs: 'rust',
  go: 'go',
  java: 'java',
  sh: 'shell',
};

export function languageOfPath(path: string): string {
  const dot = path.lastIndexOf('.');
  if (dot < 0 || dot < path.lastIndexOf('/')) return 'text';
  return BY_EXTENSION[path.slice(dot + 1).toLowerCase()] ?? 'text';
}
