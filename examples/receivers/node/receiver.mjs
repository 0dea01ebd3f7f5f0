// A minimal webhook receiver for Herald, in Node.js with the `standardwebhooks` package.
//
//     WEBHOOK_SECRET=whsec_... PORT=4000 node receiver.mjs
//
// It verifies every request's signature (and that its timestamp is within five minutes),
// answers 400 to anything that does not verify, skips a `webhook-id` it has already seen
// (Herald delivers at least once), and answers 204 at once, doing the work afterwards so that
// Herald never waits on it. GET /received lists the ids processed so far (for the test).
import http from "node:http";
import { Webhook } from "standardwebhooks";

const verifier = new Webhook(process.env.WEBHOOK_SECRET);
const seen = new Set();
const processed = [];

function answer(res, status, body) {
  const data = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

http
  .createServer((req, res) => {
    if (req.method === "GET") return answer(res, 200, processed);
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let event;
      try {
        event = verifier.verify(body, req.headers);
      } catch (e) {
        return answer(res, 400, { error: e.message });
      }
      const id = req.headers["webhook-id"];
      if (seen.has(id)) return answer(res, 200, { duplicate: true });
      seen.add(id);
      answer(res, 204);
      // The real work goes here, after the answer: update a database, call another service, ...
      setImmediate(() => processed.push(id));
    });
  })
  .listen(Number(process.env.PORT ?? 4000), "127.0.0.1", function () {
    console.log(`listening on ${this.address().port}`);
  });
