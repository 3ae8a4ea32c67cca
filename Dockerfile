FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home agentos && chown -R agentos /app
USER agentos
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "agentos.asgi:application"]
