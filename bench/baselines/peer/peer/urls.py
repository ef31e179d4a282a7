"""No HTTP views: the runner's readiness probe only needs any answer."""

urlpatterns = []
