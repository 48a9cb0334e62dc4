// The quick-start spec: a Python image with a Debian package, your code, its settings and a
// build step. Build it with `deno task imgtool build examples/quickstart/spec.ts`.
import { Image } from "imgtool";

export default Image.fromDebianBase({ name: "quickstart", pythonVersion: [3, 11] })
  .withAptPackages(["curl"])
  .withSourceFolder("./app", "/app")
  .withEnvVars({ GREETING: "hello from imgtool" })
  .withCommands("python /app/main.py > /app/greeting.txt")
  .withWorkdir("/app");
