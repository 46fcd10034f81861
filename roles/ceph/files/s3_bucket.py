"""Creates an S3 bucket if it is missing; prints 'created' or 'exists' (Ansible's changed)."""

import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, bucket = sys.argv[1], sys.argv[2]
client = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=os.environ["S3_ACCESS_KEY"],
    aws_secret_access_key=os.environ["S3_SECRET_KEY"],
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}),
)
try:
    client.head_bucket(Bucket=bucket)
    print("exists")
except ClientError as exc:
    if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
        raise
    client.create_bucket(Bucket=bucket)
    print("created")
