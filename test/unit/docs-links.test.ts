// README.md and docs/*.md: every relative link must land on a file that exists and, for a Markdown
// page, on a heading that exists (GitHub's anchor rule); README stays a front page (at most 300 lines,
// issue 24) that links every page in docs/. A section moved between pages breaks its anchors here
// instead of in a reader's browser.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname;
const README_MAX_LINES = 300;

/**
 * Pages on another branch (written there, or already on main) which these pages link already. Their
 * anchors cannot be checked until they land: remove a page from here when it does, and the test checks
 * every link into it; it fails while a listed page exists, so the list cannot go stale.
 */
const PENDING = new Set<string>([]);

/** The text with fenced code blocks and inline code spans blanked out: links there are not links. */
export function proseOf(markdown: string): string {
  return markdown
    .replace(/^( {0,3})(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1\2[^\n]*$/gm, (m) => m.replace(/[^\n]/g, ' '))
    .replace(/(`+)[^`\n][\s\S]*?\1/g, (m) => m.replace(/[^\n]/g, ' '));
}

/** GitHub's anchors for a page's headings (github-slugger: lower case, punctuation dropped, -N for repeats). */
export function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const text = markdown.replace(/^( {0,3})(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1\2[^\n]*$/gm, '');
  for (const m of text.matchAll(/^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const rendered = m[1]!.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = rendered
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

export interface Link {
  /** The page the link is in, relative to the repository root. */
  from: string;
  line: number;
  target: string;
}

export function linksOf(from: string, markdown: string): Link[] {
  const out: Link[] = [];
  const prose = proseOf(markdown);
  for (const m of prose.matchAll(/!?\[[^\]\n]*(?:\n[^\]\n]*)?\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    out.push({ from, line: prose.slice(0, m.index).split('\n').length, target: m[1]! });
  }
  return out;
}

/** What is wrong with one link, or undefined. `read` returns a page's text, or undefined when it is missing. */
export function checkLink(link: Link, read: (path: string) => string | undefined, pending = PENDING): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) return undefined; // https:, mailto: — not ours to check
  const [rawPath = '', anchor] = link.target.split('#', 2) as [string, string | undefined];
  const path = rawPath === '' ? link.from : join(dirname(link.from), decodeURIComponent(rawPath)).replace(/\/$/, '');
  const where = `${link.from}:${link.line}: ${link.target}`;
  if (pending.has(path)) {
    return read(path) !== undefined ? `${where}: ${path} exists now; remove it from PENDING in test/unit/docs-links.test.ts` : undefined;
  }
  const text = read(path);
  if (text === undefined) return `${where}: no such file ${path}`;
  if (anchor && path.endsWith('.md') && !anchorsOf(text).has(anchor)) return `${where}: ${path} has no heading with the anchor #${anchor}`;
  return undefined;
}

const readRepo = (path: string): string | undefined => {
  const abs = join(ROOT, path);
  if (!existsSync(abs)) return undefined;
  try {
    return readFileSync(abs, 'utf8');
  } catch {
    return ''; // a directory: it exists, and has no headings
  }
};

const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

describe('the checker itself', () => {
  const site: Record<string, string> = {
    'README.md': '# Top\n\nSee [a](docs/a.md#second-part), [gone](docs/gone.md), [bad anchor](docs/a.md#nope), [self](#top).\n',
    'docs/a.md': '# A page\n\n## Second part\n\n## Second part\n\n```sh\n# not a heading\n[x](missing.md)\n```\n\nBack to [README](../README.md#top), `[code](missing.md)`.\n',
  };
  const read = (p: string) => site[p];
  const problems = (from: string) => linksOf(from, site[from]!).map((l) => checkLink(l, read, new Set(['docs/later.md'])));

  it('finds a missing file and a missing anchor, and accepts the rest', () => {
    expect(problems('README.md')).toEqual([
      undefined,
      'README.md:3: docs/gone.md: no such file docs/gone.md',
      'README.md:3: docs/a.md#nope: docs/a.md has no heading with the anchor #nope',
      undefined,
    ]);
  });

  it('ignores links inside code, and numbers repeated headings as GitHub does', () => {
    expect(linksOf('docs/a.md', site['docs/a.md']!).map((l) => l.target)).toEqual(['../README.md#top']);
    expect([...anchorsOf(site['docs/a.md']!)]).toEqual(['a-page', 'second-part', 'second-part-1']);
  });

  it('makes anchors the way GitHub does from punctuation, code and links', () => {
    expect([...anchorsOf('## Fail closed — read this\n## `trustgate lookup`\n### Blob cache (measured)\n## A fleet: compose, Redis\n## See [the docs](x.md)\n')]).toEqual([
      'fail-closed--read-this',
      'trustgate-lookup',
      'blob-cache-measured',
      'a-fleet-compose-redis',
      'see-the-docs',
    ]);
  });

  it('lets a pending page be linked, and fails once it exists (then its anchors are checked)', () => {
    const pend = new Set(['docs/later.md']);
    expect(checkLink({ from: 'README.md', line: 1, target: 'docs/later.md' }, read, pend)).toBeUndefined();
    expect(checkLink({ from: 'README.md', line: 1, target: 'docs/later.md#x' }, read, pend)).toBeUndefined();
    expect(checkLink({ from: 'README.md', line: 1, target: 'docs/later.md' }, () => '# Later', pend)).toMatch(/remove it from PENDING/);
    expect(checkLink({ from: 'README.md', line: 1, target: 'docs/later.md#x' }, () => '# Later', new Set())).toMatch(/no heading with the anchor #x/);
  });
});

describe('README.md and docs/*.md', () => {
  it.each(pages)('every relative link in %s resolves', (page) => {
    const problems = linksOf(page, readRepo(page)!)
      .map((l) => checkLink(l, readRepo))
      .filter((p): p is string => p !== undefined);
    expect(problems).toEqual([]);
  });

  it(`README.md has at most ${README_MAX_LINES} lines`, () => {
    const lines = readRepo('README.md')!.replace(/\n$/, '').split('\n').length;
    expect(lines, `README.md has ${lines} lines: move sections to docs/`).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it('README links every page in docs/, so a newcomer can find it', () => {
    const linked = new Set(
      linksOf('README.md', readRepo('README.md')!)
        .map((l) => join(dirname(l.from), l.target.split('#')[0]!))
        .map((p) => relative('.', p)),
    );
    expect(pages.filter((p) => p !== 'README.md' && !linked.has(p))).toEqual([]);
  });
});
