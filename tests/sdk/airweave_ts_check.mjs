// Drives Airweave's published TypeScript SDK (npm @airweave/sdk) against this API, unchanged.
//
// The SDK returns the parsed JSON as its declared types without checking it at run time (it has
// no schema layer to switch on), so every answer is checked here against the SDK's own type
// declarations, read from the installed package's .d.ts files: required fields present and not
// null, optional ones absent, null or of their type, enums within their values, nested models
// recursively, timestamps RFC 3339 with an offset. Errors must be the SDK's typed errors with a
// string `detail`, as DESIGN requires of every error body (the SDK declares the 422 body as
// FastAPI's `{detail?: ValidationError[]}` but hands over whatever JSON arrives).
//
// Usage: AIRWEAVE_API_KEY=... AIRWEAVE_TS_SDK_DIR=<dir with node_modules/@airweave/sdk>
//   node airweave_ts_check.mjs BASE_URL COLLECTION
//   node airweave_ts_check.mjs BASE_URL --synced CONNECTION_ID   (after the first sync ran; runs,
//                                   cancels, updates and finally deletes that connection)
// Prints one JSON line describing what it saw; exits non-zero on the first mismatch.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const sdkDir = process.env.AIRWEAVE_TS_SDK_DIR;
if (!sdkDir) {
    throw new Error("AIRWEAVE_TS_SDK_DIR must name the directory holding node_modules/@airweave/sdk");
}
const requireSdk = createRequire(path.join(path.resolve(sdkDir), "package.json"));
const { AirweaveSDKClient, AirweaveSDK, AirweaveSDKError } = requireSdk("@airweave/sdk");
const typesDir = path.join(
    path.dirname(requireSdk.resolve("@airweave/sdk/package.json")),
    "dist/cjs/api/types",
);

function fail(message) {
    throw new Error(message);
}

function check(condition, message, value) {
    if (!condition) {
        fail(`${message}${value === undefined ? "" : `: ${JSON.stringify(value)}`}`);
    }
}

// --- The SDK's declared types, read from its .d.ts files -------------------------------------

const declarations = new Map();

/** `{kind: "interface", fields: [{name, optional, type}]}` or `{kind: "alias", type}`. */
function declaration(name) {
    if (!declarations.has(name)) {
        const source = readFileSync(path.join(typesDir, `${name}.d.ts`), "utf8").replace(
            /\/\*[\s\S]*?\*\//g,
            "",
        );
        const iface = source.match(new RegExp(`export interface ${name} \\{\\n([\\s\\S]*?)\\n\\}`));
        const alias = source.match(new RegExp(`export type ${name} = ([^;]+);`));
        if (iface) {
            const fields = [];
            for (const line of iface[1].split("\n")) {
                if (!line.trim()) continue;
                const field = line.match(/^ {4}(\w+)(\?)?: (.+);$/);
                check(field, `${name}.d.ts: unexpected declaration line`, line);
                fields.push({ name: field[1], optional: !!field[2], type: field[3] });
            }
            declarations.set(name, { kind: "interface", fields });
        } else if (alias) {
            declarations.set(name, { kind: "alias", type: alias[1] });
        } else {
            fail(`${name}.d.ts declares neither an interface nor a type ${name}`);
        }
    }
    return declarations.get(name);
}

/** Splits `type` on `sep` outside <...>. */
function splitTop(type, sep) {
    const parts = [];
    let depth = 0;
    let start = 0;
    for (let i = 0; i < type.length; i++) {
        if (type[i] === "<") depth++;
        if (type[i] === ">") depth--;
        if (depth === 0 && type.startsWith(sep, i)) {
            parts.push(type.slice(start, i).trim());
            start = i + sep.length;
        }
    }
    parts.push(type.slice(start).trim());
    return parts;
}

const TIMESTAMP_FIELD = /(_at|^next_run|^auth_url_expires|^last_updated)$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Checks `value` against the type expression `type`; `where` names the value in messages. */
function conform(value, type, where) {
    const alternatives = splitTop(type, " | ");
    if (alternatives.length > 1) {
        const errors = [];
        for (const alternative of alternatives) {
            try {
                conform(value, alternative, where);
                return;
            } catch (e) {
                errors.push(e.message);
            }
        }
        fail(`${where}: matches none of ${type} (${errors.join("; ")})`);
    }
    if (type.endsWith("[]")) {
        check(Array.isArray(value), `${where}: expected ${type}`, value);
        value.forEach((item, i) => conform(item, type.slice(0, -2), `${where}[${i}]`));
        return;
    }
    const record = type.match(/^Record<string, (.+)>$/);
    if (record) {
        check(value !== null && typeof value === "object" && !Array.isArray(value), `${where}: expected ${type}`, value);
        for (const [key, item] of Object.entries(value)) conform(item, record[1], `${where}.${key}`);
        return;
    }
    if (type.startsWith('"')) {
        check(value === JSON.parse(type), `${where}: expected ${type}`, value);
        return;
    }
    switch (type) {
        case "unknown":
            return;
        case "string":
        case "number":
        case "boolean":
            check(typeof value === type && (type !== "number" || Number.isFinite(value)), `${where}: expected ${type}`, value);
            if (type === "string" && TIMESTAMP_FIELD.test(where.split(".").pop())) {
                check(RFC3339.test(value) && !Number.isNaN(Date.parse(value)), `${where}: expected an RFC 3339 timestamp with an offset`, value);
            }
            return;
    }
    const model = type.match(/^AirweaveSDK\.(\w+)$/);
    check(model, `${where}: type ${type} is not handled by this check`);
    conformTo(value, model[1], where);
}

/** Checks `value` against the SDK model `name` (AirweaveSDK.<name>) and returns it. */
function conformTo(value, name, where = name) {
    const decl = declaration(name);
    if (decl.kind === "alias") {
        conform(value, decl.type, where);
        return value;
    }
    check(value !== null && typeof value === "object" && !Array.isArray(value), `${where}: expected a ${name} object`, value);
    for (const field of decl.fields) {
        const item = value[field.name];
        const at = `${where}.${field.name}`;
        if (item === undefined || item === null) {
            // The SDK's optional fields are Airweave's nullable ones: its API sends them as null.
            check(field.optional, `${at}: required by ${name}, got`, item ?? "absent");
            continue;
        }
        conform(item, field.type, at);
    }
    return value;
}

function listOf(values, name) {
    check(Array.isArray(values), `expected a ${name}[]`, values);
    values.forEach((value, i) => conformTo(value, name, `${name}[${i}]`));
    return values;
}

/** Awaits `call`, which must reject with an AirweaveSDKError of `status` (and `errorClass`). */
async function expectError(call, status, errorClass = AirweaveSDKError) {
    try {
        await call();
    } catch (e) {
        check(e instanceof errorClass, `expected ${errorClass.name} for ${status}, got`, String(e));
        check(e.statusCode === status, `expected status ${status}, got`, e.statusCode);
        check(typeof e.body?.detail === "string", `the ${status} body's detail must be a string`, e.body);
        return e;
    }
    fail(`expected a ${status} error, the call succeeded`);
}

// --- The two runs ------------------------------------------------------------------------------

async function synced(client, connectionId) {
    const jobs = listOf(await client.sourceConnections.getSourceConnectionJobs(connectionId), "SourceConnectionJob");
    check(jobs.length === 1 && jobs[0].status === "completed", "one completed job", jobs);
    const [job] = jobs;
    check(job.completed_at && job.duration_seconds != null, "a finished job's times", job);
    check(job.entities_updated === 0 && job.entities_deleted === 0 && job.error == null, "first sync counts", job);

    const connection = conformTo(await client.sourceConnections.get(connectionId), "SourceConnection");
    check(connection.status === "active", "status after the sync", connection.status);
    check(connection.sync?.successful_runs === 1 && connection.sync.last_job?.status === "completed", "sync details", connection.sync);
    check(connection.entities?.total_entities === job.entities_inserted, "entity summary", connection.entities);

    const run = conformTo(await client.sourceConnections.run(connectionId, { force_full_sync: true }), "SourceConnectionJob");
    check(run.status === "pending" && run.source_connection_id === connectionId, "run", run);
    const stopped = conformTo(await client.sourceConnections.cancelJob(connectionId, run.id), "SourceConnectionJob");
    check(stopped.status === "cancelled" && stopped.id === run.id, "cancel", stopped);

    const updated = conformTo(
        await client.sourceConnections.update(connectionId, {
            name: "Renamed by the TS SDK",
            schedule: { cron: "0 */2 * * *" },
        }),
        "SourceConnection",
    );
    check(updated.name === "Renamed by the TS SDK" && updated.schedule?.cron === "0 */2 * * *", "update", updated);
    check(updated.schedule.next_run != null, "next run after update", updated.schedule);
    await expectError(
        () => client.sourceConnections.update(connectionId, { schedule: { cron: "* * * * *" } }),
        422,
        AirweaveSDK.UnprocessableEntityError,
    );

    const deleted = conformTo(await client.sourceConnections.delete(connectionId), "SourceConnection");
    check(deleted.id === connectionId && deleted.name === "Renamed by the TS SDK", "delete", deleted);
    await expectError(() => client.sourceConnections.get(connectionId), 404);
    return { inserted: job.entities_inserted, deleted: deleted.id };
}

async function fresh(client, baseUrl, collection) {
    const sources = listOf(await client.sources.list(), "Source");
    const shortNames = sources.map((s) => s.short_name).sort();
    check(shortNames.includes("stub") && shortNames.includes("github"), "sources", shortNames);
    const github = conformTo(await client.sources.get("github"), "Source");
    check(github.short_name === "github" && github.class_name, "github", github);
    check(github.auth_fields?.fields.some((f) => f.name === "personal_access_token"), "github auth fields", github.auth_fields);
    check(github.config_fields.fields.some((f) => f.name === "repo_name" && f.required), "github config fields", github.config_fields);
    const stub = conformTo(await client.sources.get("stub"), "Source");
    check(stub.short_name === "stub" && stub.auth_methods?.includes("direct"), "stub", stub);

    const created = conformTo(
        await client.sourceConnections.create({
            short_name: "stub",
            readable_collection_id: collection,
            authentication: { credentials: { api_key: "sdk-wire-secret" } },
            config: { entity_count: 5, seed: 1 },
            schedule: { cron: "0 3 * * *" },
        }),
        "SourceConnection",
    );
    check(created.status === "active", "created status", created.status);
    check(created.auth.method === "direct" && created.auth.authenticated, "created auth", created.auth);
    check(created.schedule?.cron === "0 3 * * *" && created.schedule.next_run != null, "created schedule", created.schedule);
    check(created.sync?.last_job?.status === "pending", "first job", created.sync);

    const jobs = listOf(await client.sourceConnections.getSourceConnectionJobs(created.id, { limit: 10 }), "SourceConnectionJob");
    check(jobs.length === 1 && jobs[0].id === created.sync.last_job.id, "jobs", jobs);
    check(jobs[0].status === "pending" && jobs[0].source_connection_id === created.id, "pending job", jobs[0]);
    check(jobs[0].entities_inserted === 0 && jobs[0].completed_at == null, "pending job counts", jobs[0]);

    const fetched = conformTo(await client.sourceConnections.get(created.id), "SourceConnection");
    check(fetched.id === created.id && fetched.name === "Stub Connection", "get", fetched);

    const items = listOf(await client.sourceConnections.list({ collection, skip: 0, limit: 10 }), "SourceConnectionListItem");
    check(items.length === 1 && items[0].id === created.id, "list", items);
    check(items[0].auth_method === "direct" && items[0].is_authenticated, "list item auth", items[0]);

    await expectError(() => client.sourceConnections.get("00000000-0000-0000-0000-000000000000"), 404);
    await expectError(
        () =>
            client.sourceConnections.create({
                short_name: "stub",
                readable_collection_id: collection,
                name: "abc",
                authentication: { credentials: { api_key: "k" } },
            }),
        422,
        AirweaveSDK.UnprocessableEntityError,
    );
    await expectError(() => new AirweaveSDKClient({ apiKey: "sc_wrong", baseUrl }).sources.list(), 401);
    return { sources: shortNames, created: created.id, listed: items.length };
}

async function main() {
    const [baseUrl, mode, arg] = process.argv.slice(2);
    check(baseUrl && mode, "usage: airweave_ts_check.mjs BASE_URL (COLLECTION | --synced CONNECTION_ID)");
    const client = new AirweaveSDKClient({ apiKey: process.env.AIRWEAVE_API_KEY, baseUrl });
    const seen = mode === "--synced" ? await synced(client, arg) : await fresh(client, baseUrl, mode);
    console.log(JSON.stringify(seen));
}

main().catch((e) => {
    console.error(e instanceof AirweaveSDKError ? `${e.message} ${JSON.stringify(e.body)}` : e.stack);
    process.exit(1);
});
