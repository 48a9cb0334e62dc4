// Run in the image as `node hello.js`: prints the downloaded greeting and who runs it.
const { readFileSync } = require("node:fs");
const { userInfo } = require("node:os");

const greeting = readFileSync("/opt/example/greeting.txt", "utf8").trim();
console.log(`${greeting} (node ${process.version}, user ${userInfo().username})`);
