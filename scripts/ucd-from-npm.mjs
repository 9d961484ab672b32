// Writes DerivedGeneralCategory.txt and PropList.txt (White_Space only), in the Unicode
// Character Database's own formats, from an unpacked @unicode/unicode-X.Y.Z npm package:
// a way to get a UCD version newer than the system's for scripts/gen-unicode-tables.py.
//   npm pack @unicode/unicode-15.1.0 && tar -xzf unicode-unicode-15.1.0-*.tgz
//   node scripts/ucd-from-npm.mjs package OUT_DIR
//   scripts/gen-unicode-tables.py OUT_DIR > runtime/tokenizer/tokenizer-unicode-data.cpp
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [pkg, outDir] = process.argv.slice(2);
const version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).name.match(/(\d+\.\d+\.\d+)/)[1];

const CATEGORIES = {
  Uppercase_Letter: 'Lu', Lowercase_Letter: 'Ll', Titlecase_Letter: 'Lt', Modifier_Letter: 'Lm', Other_Letter: 'Lo',
  Nonspacing_Mark: 'Mn', Spacing_Mark: 'Mc', Enclosing_Mark: 'Me',
  Decimal_Number: 'Nd', Letter_Number: 'Nl', Other_Number: 'No',
  Connector_Punctuation: 'Pc', Dash_Punctuation: 'Pd', Open_Punctuation: 'Ps', Close_Punctuation: 'Pe',
  Initial_Punctuation: 'Pi', Final_Punctuation: 'Pf', Other_Punctuation: 'Po',
  Math_Symbol: 'Sm', Currency_Symbol: 'Sc', Modifier_Symbol: 'Sk', Other_Symbol: 'So',
  Space_Separator: 'Zs', Line_Separator: 'Zl', Paragraph_Separator: 'Zp',
  Control: 'Cc', Format: 'Cf', Surrogate: 'Cs', Private_Use: 'Co',
};

async function codePoints(rel) {
  return (await import(pathToFileURL(path.resolve(pkg, rel, 'code-points.mjs')).href)).default;
}

// Consecutive code points as "XXXX" or "XXXX..YYYY" fields.
function rangeLines(cps, label) {
  const sorted = [...cps].sort((a, b) => a - b);
  const hex = (c) => c.toString(16).toUpperCase().padStart(4, '0');
  const lines = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) ++j;
    lines.push((i === j ? hex(sorted[i]) : `${hex(sorted[i])}..${hex(sorted[j])}`) + ` ; ${label}`);
    i = j + 1;
  }
  return lines;
}

fs.mkdirSync(outDir, { recursive: true });
let gc = [`# DerivedGeneralCategory-${version}.txt (from @unicode/unicode-${version})`];
for (const [name, abbr] of Object.entries(CATEGORIES)) gc = gc.concat(rangeLines(await codePoints(`General_Category/${name}`), abbr));
fs.writeFileSync(path.join(outDir, 'DerivedGeneralCategory.txt'), gc.join('\n') + '\n');
const ws = [`# PropList-${version}.txt (White_Space only, from @unicode/unicode-${version})`]
  .concat(rangeLines(await codePoints('Binary_Property/White_Space'), 'White_Space'));
fs.writeFileSync(path.join(outDir, 'PropList.txt'), ws.join('\n') + '\n');
