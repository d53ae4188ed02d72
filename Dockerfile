# The shadow tracker. Node 24 runs the TypeScript source directly (type stripping).
FROM node:24-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY src ./src
COPY bin ./bin
ENV PORT=8766 HOST=0.0.0.0
EXPOSE 8766
USER node
CMD ["node", "src/cli/main.ts", "serve"]
