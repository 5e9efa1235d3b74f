# The overleg service image: Python, the project and its pinned dependencies.
FROM python:3.11.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --uid 10001 overleg
USER overleg
EXPOSE 8000
CMD ["overleg", "serve", "--host", "0.0.0.0", "--port", "8000"]
