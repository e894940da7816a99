import Hummingbird

/// 405 with an `Allow` header for a route the API has, asked with a method it does not take (the router
/// alone answers 404 for those).
struct MethodNotAllowed<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HTTPError where e.status == .notFound {
            guard let allowed = Self.allowed(request.uri.path) else { throw e }
            return Response(status: .methodNotAllowed, headers: [.allow: allowed])
        }
    }

    /// The methods of the API's route matching `path`; nil when no route does.
    static func allowed(_ path: String) -> String? {
        let p = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        switch (p.count, p.first) {
        case (1, "health"?), (1, "metrics"?), (1, "openapi.json"?): return "GET"
        case (3, "v2"?) where p.last == "migration-task": return "POST"
        case (3, "v2"?) where p.last == "migration-tasks": return "GET"
        case (4, "v2"?) where p.dropFirst(2).first == "migration-task": return "GET, DELETE"
        case (5, "v2"?) where p.dropFirst(2).first == "migration-task" && p.last == "stop": return "POST"
        default: return nil
        }
    }
}
