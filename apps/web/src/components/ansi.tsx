import Anser from 'anser';

/**
 * One log line's ANSI colours and styles as spans (never as HTML: the text stays text). The 16
 * basic colours are classes, so the theme decides them for light and dark; the 256-colour
 * palette and true colour are the exact colours the build asked for.
 */
export function AnsiText({ text }: { text: string }) {
  if (!text.includes('\u001b')) return <>{text}</>;
  const chunks = Anser.ansiToJson(text, { use_classes: true, remove_empty: true });
  return (
    <>
      {chunks.map((c, i) => {
        const classes: string[] = [];
        const style: Record<string, string> = {};
        colour(c.fg, c.fg_truecolor, 'fg', classes, style);
        colour(c.bg, c.bg_truecolor, 'bg', classes, style);
        for (const d of c.decorations ?? []) classes.push(`ansi-${d}`);
        return classes.length || Object.keys(style).length ? (
          <span key={i} class={classes.join(' ')} style={style}>
            {c.content}
          </span>
        ) : (
          c.content
        );
      })}
    </>
  );
}

function colour(name: string | null, truecolor: string | null, which: 'fg' | 'bg', classes: string[], style: Record<string, string>): void {
  if (!name) return;
  const prop = which === 'fg' ? 'color' : 'backgroundColor';
  if (name === 'ansi-truecolor' && truecolor) {
    style[prop] = `rgb(${truecolor})`;
    return;
  }
  const palette = /^ansi-palette-(\d+)$/.exec(name);
  if (palette) {
    const n = Number(palette[1]);
    if (n >= 16) {
      style[prop] = paletteRgb(n);
      return;
    }
    classes.push(`${BASIC[n]}-${which}`);
    return;
  }
  classes.push(`${name}-${which}`);
}

const BASIC = ['ansi-black', 'ansi-red', 'ansi-green', 'ansi-yellow', 'ansi-blue', 'ansi-magenta', 'ansi-cyan', 'ansi-white', 'ansi-bright-black', 'ansi-bright-red', 'ansi-bright-green', 'ansi-bright-yellow', 'ansi-bright-blue', 'ansi-bright-magenta', 'ansi-bright-cyan', 'ansi-bright-white'];

/** xterm's 256-colour palette above the basic 16: a 6×6×6 cube, then 24 greys. */
function paletteRgb(n: number): string {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v}, ${v}, ${v})`;
  }
  const i = n - 16;
  const level = (x: number) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${level(Math.floor(i / 36))}, ${level(Math.floor(i / 6) % 6)}, ${level(i % 6)})`;
}
