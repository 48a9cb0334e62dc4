// The helpers plugins write Dockerfile text with (src/dockerfile.ts), checked against what
// reads that text: a POSIX shell for shell words, Docker's quoting rules for Dockerfile
// words, RFC 4180 CSV (as BuildKit parses --mount) for mount flags, JSON for COPY.
import assert from "node:assert/strict";
import {
  canQuoteForDockerfile,
  copy,
  dockerfileQuote,
  env,
  isSafePath,
  mountFlag,
  run,
  Secret,
  secretPath,
  shellQuote,
  shellQuoteExpanding,
} from "../mod.ts";
import { dockerUnquote } from "./helpers.ts";

/** Have `sh` print each word (as written) followed by NUL; return what it printed. */
async function shellWords(words: readonly string[], env: Record<string, string> = {}) {
  const script = `printf '%s\\0' ${words.join(" ")}`;
  const output = await new Deno.Command("sh", {
    args: ["-c", script],
    env: { ...env, LC_ALL: "C.UTF-8" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const printed = new TextDecoder().decode(output.stdout).split("\0");
  assert.equal(printed.pop(), "", "output ends with NUL");
  return printed;
}

const NASTY = [
  "",
  "plain",
  "two words",
  "it's",
  "''",
  "'\"'",
  'say "hi"',
  "$HOME",
  "${PATH}",
  "$(id -u)",
  "`id -u`",
  "back\\slash\\",
  "\\n is not a newline",
  "new\nline",
  "tab\there",
  "*.py",
  "~root",
  "a;b&&c||d|e>f<g",
  "#comment",
  "-n",
  "--flag=value",
  "!bang",
  "{a,b}",
  "[abc]",
  "ünïcödé ✓ 日本",
  "trailing space ",
  " leading space",
  "=",
  "%",
  "\u007f\u0001",
];

Deno.test("shellQuote() gives the shell back exactly the string, whatever it holds", async () => {
  assert.deepEqual(await shellWords(NASTY.map(shellQuote)), NASTY);
});

Deno.test("shellQuote() leaves plain words alone and quotes the rest", () => {
  assert.equal(shellQuote("numpy==2.1.0"), "numpy==2.1.0");
  assert.equal(shellQuote("/opt/venv/bin/python"), "/opt/venv/bin/python");
  assert.equal(shellQuote("user@host:path,x+y%"), "user@host:path,x+y%");
  assert.equal(shellQuote(""), "''");
  assert.equal(shellQuote("a b"), "'a b'");
  assert.equal(shellQuote("it's"), "'it'\\''s'");
  assert.equal(shellQuote("pandas[parquet]"), "'pandas[parquet]'");
});

Deno.test("shellQuoteExpanding() expands only the named variables, everything else stays literal", async () => {
  const environment = { TOKEN: "s3cr3t", OTHER: "leaked" };
  const cases: [string, string][] = [
    ["https://$TOKEN@host/x y", "https://s3cr3t@host/x y"],
    ["https://${TOKEN}@host", "https://s3cr3t@host"],
    ["$TOKEN", "s3cr3t"],
    ["${TOKEN}${TOKEN}", "s3cr3ts3cr3t"],
    ["$TOKENS and ${TOKENS}", "$TOKENS and ${TOKENS}"],
    ["$OTHER ${OTHER} $(echo x) `echo y`", "$OTHER ${OTHER} $(echo x) `echo y`"],
    ["it's $TOKEN's", "it's s3cr3t's"],
    ["no variables here", "no variables here"],
    ["", ""],
  ];
  const quoted = cases.map(([value]) => shellQuoteExpanding(value, ["TOKEN"]));
  assert.deepEqual(await shellWords(quoted, environment), cases.map(([, expected]) => expected));
  // Without variables it is shellQuote.
  assert.equal(shellQuoteExpanding("$TOKEN x", []), shellQuote("$TOKEN x"));
  assert.equal(
    shellQuoteExpanding("https://$TOKEN@host/x y", ["TOKEN"]),
    `'https://'"\${TOKEN}"'@host/x y'`,
  );
});

Deno.test("shellQuoteExpanding() keeps a variable name from becoming regular-expression syntax", async () => {
  // Names are variable names; anything else in them is dropped, never interpreted.
  const quoted = shellQuoteExpanding("a.b $A.B", ["A.B"]);
  assert.deepEqual(await shellWords([quoted], { AB: "no" }), ["a.b $A.B"]);
  // A name with no name characters names nothing (and must not match a lone $).
  const lone = ["cost $ 5", "$", "${}"].map((value) => shellQuoteExpanding(value, ["-", ""]));
  assert.deepEqual(await shellWords(lone), ["cost $ 5", "$", "${}"]);
});

Deno.test('dockerfileQuote() escapes \\, " and $ so Docker reads the value back exactly', () => {
  assert.equal(dockerfileQuote('say "hi" to $USER'), '"say \\"hi\\" to \\$USER"');
  assert.equal(dockerfileQuote("C:\\temp"), '"C:\\\\temp"');
  assert.equal(dockerfileQuote(""), '""');
  const values = NASTY.filter(canQuoteForDockerfile);
  assert.ok(values.length > 20);
  for (const value of values) assert.equal(dockerUnquote(dockerfileQuote(value)), value, value);
});

Deno.test("dockerfileQuote() refuses line breaks and control characters", () => {
  for (const value of ["a\nb", "a\rb", "tab\t", "\u0000", "del\u007f"]) {
    assert.equal(canQuoteForDockerfile(value), false, JSON.stringify(value));
    assert.throws(() => dockerfileQuote(value), RangeError);
  }
  assert.equal(canQuoteForDockerfile("ünïcödé and spaces"), true);
});

/** RFC 4180 fields of one line: quoted fields may hold commas and doubled quotes. */
function csvFields(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        assert.ok(i < line.length, `unterminated quote in ${line}`);
        if (line[i] === '"' && line[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else {
          value += line[i++];
        }
      }
      assert.ok(i === line.length || line[i] === ",", `text after a quoted field in ${line}`);
      fields.push(value);
    } else {
      const end = line.indexOf(",", i) === -1 ? line.length : line.indexOf(",", i);
      const value = line.slice(i, end);
      assert.ok(!value.includes('"'), `a bare quote in ${line}`);
      fields.push(value);
      i = end;
    }
    i++;
  }
  return fields;
}

Deno.test("mountFlag() writes cache and bind mounts as BuildKit reads them", () => {
  assert.equal(
    mountFlag({ type: "cache", target: "/root/.cache/pip" }),
    "--mount=type=cache,target=/root/.cache/pip,sharing=locked",
  );
  assert.equal(
    mountFlag({ type: "cache", target: "/c", id: "shared-id", sharing: "shared" }),
    "--mount=type=cache,target=/c,id=shared-id,sharing=shared",
  );
  assert.equal(
    mountFlag({
      type: "bind",
      source: "/uv",
      target: "/tmp/uv",
      from: "ghcr.io/astral-sh/uv:0.8.13",
    }),
    "--mount=type=bind,from=ghcr.io/astral-sh/uv:0.8.13,source=/uv,target=/tmp/uv",
  );
  assert.equal(
    mountFlag({ type: "bind", source: "ctx/dir", target: "/work", readwrite: true }),
    "--mount=type=bind,source=ctx/dir,target=/work,rw",
  );
});

Deno.test("mountFlag() quotes fields with commas, quotes or spaces as CSV", () => {
  const nasty = ["/with,comma", '/with"quote', "/with space", '/all, "of" them', "/plain"];
  for (const target of nasty) {
    const flag = mountFlag({ type: "bind", source: `src${target}`, target });
    assert.ok(flag.startsWith("--mount="));
    assert.deepEqual(csvFields(flag.slice("--mount=".length)), [
      "type=bind",
      `source=src${target}`,
      `target=${target}`,
    ]);
  }
});

Deno.test("run() writes mounts, secrets, step variables and commands in order", () => {
  const token = new Secret({ key: "TOKEN" });
  const file = new Secret({ key: "netrc", group: "ci", mount: "/root/.netrc" });
  const line = run(["apt-get update", "apt-get install -y git"], {
    mounts: [{ type: "cache", target: "/var/cache/apt" }],
    secrets: [token, file],
    env: { DEBIAN_FRONTEND: "noninteractive", ODD: "a b'c" },
  });
  assert.equal(
    line,
    [
      "RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\",
      "    --mount=type=secret,id=TOKEN,target=/run/secrets/TOKEN,required=true,mode=0444 \\",
      "    --mount=type=secret,id=CI_NETRC,target=/root/.netrc,required=true,mode=0444 \\",
      "    export DEBIAN_FRONTEND=noninteractive \\",
      "    && export ODD='a b'\\''c' \\",
      '    && TOKEN="$(cat /run/secrets/TOKEN)" && export TOKEN \\',
      "    && apt-get update \\",
      "    && apt-get install -y git",
    ].join("\n"),
  );
  assert.equal(run("echo hi"), "RUN echo hi");
  assert.equal(secretPath(token), "/run/secrets/TOKEN");
  assert.equal(secretPath(file), "/root/.netrc");
});

Deno.test("copy() writes the JSON form, so paths with spaces and quotes survive", () => {
  assert.equal(
    copy([".imgtool/01-source_file/app.py"], "./", { chown: "app" }),
    'COPY --chown=app [".imgtool/01-source_file/app.py", "./"]',
  );
  assert.equal(
    copy(["/uv"], "/bin/", { from: "ghcr.io/x/uv:1" }),
    'COPY --from=ghcr.io/x/uv:1 ["/uv", "/bin/"]',
  );
  const odd = ['dir/with space/a "b".txt', "dir/it's"];
  const line = copy(odd, "/dst dir/");
  assert.deepEqual(JSON.parse(line.slice("COPY ".length)), [...odd, "/dst dir/"]);
});

Deno.test("env() writes one ENV with every value quoted", () => {
  assert.equal(env({ A: "1" }), 'ENV A="1"');
  const line = env({ MODE: "prod", GREETING: 'say "hi"', PRICE: "$5" });
  assert.equal(line, 'ENV MODE="prod" \\\n    GREETING="say \\"hi\\"" \\\n    PRICE="\\$5"');
  assert.throws(() => env({ BAD: "a\nb" }), RangeError);
});

Deno.test("isSafePath() refuses empty paths, $, backslashes and control characters", () => {
  for (const path of ["/app", "relative/dir", "with space", "ünï", "./x", "a'b", 'a"b']) {
    assert.equal(isSafePath(path), true, path);
  }
  for (const path of ["", "/home/$USER", "C:\\app", "a\nb", "a\tb", "\u0000"]) {
    assert.equal(isSafePath(path), false, JSON.stringify(path));
  }
});
