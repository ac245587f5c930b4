"""The stacks users would otherwise pick, built as their own docs show, for the
head-to-head in bench/run.py: Flask + Celery + Redis (celery_side.py) and Express + BullMQ
+ Redis (bullmq/). Each serves the same create and status routes as ours and runs the same
job: four steps, progress reported after each."""
