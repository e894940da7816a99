import Hummingbird
import Logging
import RDBMigration

/// 500 with the API's error body (`error_code`, `error_msg`, as the OpenAPI document's `Internal` response says)
/// for what a route throws that is not an HTTP error: the task store failing or not answering in time
/// (`TaskAPI.storeLimit`). Logged with the request.
struct InternalErrors<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HTTPError {
            throw e
        } catch {
            logger.error("\(request.method) \(request.uri.path) failed: \(error)")
            return TaskAPI.error(MigrationTaskError(field: "", message: "\(error)", status: 500))
        }
    }
}
