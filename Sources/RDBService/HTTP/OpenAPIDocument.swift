/// The OpenAPI 3.1 document of the task API (`GET /openapi.json`). The ids of the configured instances and
/// the names of the configured buckets are enums in it, so a body the document accepts is one the service
/// accepts: everything that makes a body a 400 is said here (the kinds of task are two schemas, each
/// requiring its own fields and refusing the other's).
enum OpenAPIDocument {
    static func text(instances: [String], buckets: [String]) -> String {
        template
            .replacingOccurrences(of: "\"%INSTANCES%\"", with: list(instances))
            .replacingOccurrences(of: "\"%BUCKETS%\"", with: list(buckets))
    }

    static func list(_ names: [String]) -> String {
        "[" + names.map { "\"" + escape($0) + "\"" }.joined(separator: ",") + "]"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if c.value < 0x20 { out += "\\u" + String(repeating: "0", count: 4 - String(c.value, radix: 16).count) + String(c.value, radix: 16) } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    static let template = #"""
    {
      "openapi": "3.1.0",
      "info": {
        "title": "rdbcat migration tasks",
        "version": "1.0.0",
        "description": "Creates, shows, lists, stops and deletes data migration tasks: backup files (RDB, AOF) imported from a bucket into an instance, or a live instance copied into another (online migration). Passwords given in a task body are never returned."
      },
      "paths": {
        "/v2/{project_id}/migration-task": {
          "post": {
            "operationId": "createMigrationTask",
            "parameters": [{"$ref": "#/components/parameters/project_id"}],
            "requestBody": {
              "required": true,
              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MigrationTaskRequest"}}}
            },
            "responses": {
              "200": {
                "description": "The task was created; it runs as soon as a worker and its target are free.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskState"}}},
                "links": {
                  "GetTask": {"operationId": "showMigrationTask", "parameters": {"project_id": "$request.path.project_id", "task_id": "$response.body#/id"}},
                  "StopTask": {"operationId": "stopMigrationTask", "parameters": {"project_id": "$request.path.project_id", "task_id": "$response.body#/id"}}
                }
              },
              "400": {"$ref": "#/components/responses/Invalid"},
              "500": {"$ref": "#/components/responses/Internal"}
            }
          }
        },
        "/v2/{project_id}/migration-task/{task_id}": {
          "get": {
            "operationId": "showMigrationTask",
            "parameters": [{"$ref": "#/components/parameters/project_id"}, {"$ref": "#/components/parameters/task_id"}],
            "responses": {
              "200": {"description": "The task.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}},
              "400": {"$ref": "#/components/responses/Invalid"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "500": {"$ref": "#/components/responses/Internal"}
            }
          },
          "delete": {
            "operationId": "deleteMigrationTask",
            "parameters": [{"$ref": "#/components/parameters/project_id"}, {"$ref": "#/components/parameters/task_id"}],
            "responses": {
              "204": {"description": "The task was deleted."},
              "400": {"$ref": "#/components/responses/Invalid"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "409": {"description": "The task is still MIGRATING: stop it first.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "500": {"$ref": "#/components/responses/Internal"}
            }
          }
        },
        "/v2/{project_id}/migration-task/{task_id}/stop": {
          "post": {
            "operationId": "stopMigrationTask",
            "parameters": [{"$ref": "#/components/parameters/project_id"}, {"$ref": "#/components/parameters/task_id"}],
            "responses": {
              "200": {"description": "The stop was asked: a task no worker runs yet is TERMINATED at once; a running one stops (an import between keys) and then ends TERMINATED. A finished task is left as it is.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskState"}}}},
              "400": {"$ref": "#/components/responses/Invalid"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "500": {"$ref": "#/components/responses/Internal"}
            }
          }
        },
        "/v2/{project_id}/migration-tasks": {
          "get": {
            "operationId": "listMigrationTasks",
            "parameters": [
              {"$ref": "#/components/parameters/project_id"},
              {"name": "offset", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": 1000000000}},
              {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
              {"name": "name", "in": "query", "required": false, "schema": {"type": "string"}}
            ],
            "responses": {
              "200": {"description": "A page of the project's tasks, newest first.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskList"}}}},
              "400": {"$ref": "#/components/responses/Invalid"},
              "500": {"$ref": "#/components/responses/Internal"}
            }
          }
        },
        "/metrics": {
          "get": {
            "operationId": "metrics",
            "responses": {"200": {"description": "Prometheus metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}}}
          }
        },
        "/health": {
          "get": {
            "operationId": "health",
            "responses": {"200": {"description": "The service runs.", "content": {"application/json": {"schema": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}}}}}
          }
        }
      },
      "components": {
        "parameters": {
          "project_id": {"name": "project_id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}},
          "task_id": {"name": "task_id", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"}}
        },
        "responses": {
          "Invalid": {"description": "The request is invalid; error_field names the culprit.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "NotFound": {"description": "No such task in the project.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Internal": {"description": "The service failed (its task store is unreachable, ...).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        },
        "schemas": {
          "MigrationTaskRequest": {
            "oneOf": [{"$ref": "#/components/schemas/ImportTaskRequest"}, {"$ref": "#/components/schemas/OnlineTaskRequest"}]
          },
          "ImportTaskRequest": {
            "type": "object",
            "required": ["task_name", "migration_type", "migration_method", "backup_files", "target_instance"],
            "properties": {
              "task_name": {"$ref": "#/components/schemas/Name"},
              "description": {"type": ["string", "null"]},
              "migration_type": {"const": "backupfile_import"},
              "migration_method": {"const": "full_amount_migration"},
              "backup_files": {"$ref": "#/components/schemas/BackupFiles"},
              "network_type": {"$ref": "#/components/schemas/NetworkType"},
              "source_instance": {"type": "null"},
              "target_instance": {"$ref": "#/components/schemas/TargetInstance"}
            }
          },
          "OnlineTaskRequest": {
            "type": "object",
            "required": ["task_name", "migration_type", "migration_method", "source_instance", "target_instance"],
            "properties": {
              "task_name": {"$ref": "#/components/schemas/Name"},
              "description": {"type": ["string", "null"]},
              "migration_type": {"const": "online_migration"},
              "migration_method": {"enum": ["full_amount_migration", "incremental_migration"]},
              "backup_files": {"type": "null"},
              "network_type": {"$ref": "#/components/schemas/NetworkType"},
              "source_instance": {"$ref": "#/components/schemas/SourceInstance"},
              "target_instance": {"$ref": "#/components/schemas/TargetInstance"}
            }
          },
          "Name": {"type": "string", "minLength": 1},
          "NetworkType": {"enum": ["vpc", "vpn", null]},
          "BackupFiles": {
            "type": "object",
            "required": ["bucket_name", "files"],
            "properties": {
              "file_source": {"enum": ["self_build_obs", null]},
              "bucket_name": {"enum": "%BUCKETS%"},
              "files": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/BackupFile"}}
            }
          },
          "BackupFile": {
            "type": "object",
            "required": ["file_name"],
            "properties": {
              "file_name": {"type": "string", "pattern": "^[^/\\u0000]+(/[^/\\u0000]+)*$", "not": {"pattern": "(^|/)\\.\\.(/|$)"}},
              "size": {"oneOf": [{"type": "string", "pattern": "^[0-9]{1,15}$"}, {"type": "integer", "minimum": 0, "maximum": 999999999999999}, {"type": "null"}]},
              "update_at": {"oneOf": [{"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"}, {"type": "null"}]}
            }
          },
          "SourceInstance": {
            "type": "object",
            "required": ["addrs"],
            "properties": {
              "addrs": {"type": "string", "pattern": "^[\\s\\S]+:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"},
              "password": {"type": ["string", "null"]}
            }
          },
          "TargetInstance": {
            "type": "object",
            "required": ["id"],
            "properties": {
              "id": {"enum": "%INSTANCES%"},
              "name": {"type": ["string", "null"]},
              "password": {"type": ["string", "null"]}
            }
          },
          "TaskState": {
            "type": "object",
            "required": ["id", "name", "status"],
            "properties": {
              "id": {"type": "string"},
              "name": {"type": "string"},
              "status": {"$ref": "#/components/schemas/Status"}
            }
          },
          "Status": {"enum": ["MIGRATING", "SUCCESS", "FAILED", "TERMINATED"]},
          "Task": {
            "type": "object",
            "required": ["id", "name", "project_id", "status", "phase", "request", "created_at", "updated_at", "attempts", "stop_requested"],
            "properties": {
              "id": {"type": "string"},
              "name": {"type": "string"},
              "project_id": {"type": "string"},
              "status": {"$ref": "#/components/schemas/Status"},
              "phase": {"type": "string", "description": "queued, importing, full_sync, incremental, stopping, done"},
              "request": {"type": "object", "description": "The body the task was created with; passwords are ******."},
              "created_at": {"type": "string"},
              "updated_at": {"type": "string"},
              "started_at": {"type": ["string", "null"]},
              "finished_at": {"type": ["string", "null"]},
              "attempts": {"type": "integer", "description": "Runs started (a run after the first resumes the task)."},
              "stop_requested": {"type": "boolean"},
              "progress": {"type": ["object", "null"], "description": "Imports: per file state, bytes and keys; online migrations: phase, offsets, lag."},
              "report": {"type": ["object", "null"], "description": "The final report once the task ended."},
              "failure": {"type": ["string", "null"]}
            }
          },
          "TaskList": {
            "type": "object",
            "required": ["count", "migration_tasks"],
            "properties": {
              "count": {"type": "integer"},
              "migration_tasks": {
                "type": "array",
                "items": {
                  "type": "object",
                  "required": ["task_id", "task_name", "status", "phase", "target_instance_id", "created_at"],
                  "properties": {
                    "task_id": {"type": "string"},
                    "task_name": {"type": "string"},
                    "status": {"$ref": "#/components/schemas/Status"},
                    "phase": {"type": "string"},
                    "migration_type": {"type": ["string", "null"]},
                    "migration_method": {"type": ["string", "null"]},
                    "data_source": {"type": ["string", "null"]},
                    "target_instance_id": {"type": "string"},
                    "target_instance_name": {"type": ["string", "null"]},
                    "created_at": {"type": "string"}
                  }
                }
              }
            }
          },
          "Error": {
            "type": "object",
            "required": ["error_code", "error_msg"],
            "properties": {
              "status": {"type": "integer"},
              "error_code": {"type": "string"},
              "error_field": {"type": "string"},
              "error_msg": {"type": "string"}
            }
          }
        }
      }
    }
    """#
}
