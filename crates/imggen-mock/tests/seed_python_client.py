"""The runblob seed's Python clients, run against imggen-mock.

`ChatGPTImageClient` and `ChatGPTImageAPI` are copied from
/work/shared/seeds/001_1fd4022a7b4a4dc9.txt unchanged except `base_url`; the key is passed as
the seed passes "YOUR_API_KEY". The usage below follows the seed's, with a short
`poll_interval` (the mock runs its fast profile) and checks of what came back.

Run by tests/it/binary.rs against the `imggen-mock` binary:
    RUNBLOB_BASE_URL=http://127.0.0.1:PORT RUNBLOB_API_KEY=sk-... python3 seed_python_client.py
"""
import os
import requests
import time
from typing import Optional, List

BASE_URL = os.environ["RUNBLOB_BASE_URL"]
API_KEY = os.environ["RUNBLOB_API_KEY"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ChatGPTImageClient:
    def __init__(self, api_key):
        self.api_key = api_key
        self.base_url = BASE_URL  # was "https://platform.runblob.io"
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json"
        }
    
    def generate(self, prompt, aspect_ratio=None, **kwargs):
        payload = {"prompt": prompt}
        if aspect_ratio:
            payload["aspect_ratio"] = aspect_ratio
        payload.update(kwargs)
        
        response = requests.post(
            f"{self.base_url}/v1/chatgpt-images/generate",
            headers=self.headers,
            json=payload
        )
        return response.json()
    
    def generate_with_references(self, prompt, images, aspect_ratio=None, **kwargs):
        payload = {
            "prompt": prompt,
            "images": images
        }
        if aspect_ratio:
            payload["aspect_ratio"] = aspect_ratio
        payload.update(kwargs)
        
        response = requests.post(
            f"{self.base_url}/v1/chatgpt-images/generate",
            headers=self.headers,
            json=payload
        )
        return response.json()
    
    def status(self, task_uuid):
        response = requests.get(
            f"{self.base_url}/v1/chatgpt-images/generations/{task_uuid}",
            headers=self.headers
        )
        return response.json()
    
    def wait_for_completion(self, task_uuid, poll_interval=10):
        while True:
            result = self.status(task_uuid)
            if result["status"] == "completed":
                return result["result_image_url"]
            elif result["status"] == "failed":
                raise Exception(f"Generation failed: {result.get('message')}")
            time.sleep(poll_interval)


class ChatGPTImageAPI:
    def __init__(self, api_key: str):
        self.api_key = api_key
        self.base_url = BASE_URL + "/v1/chatgpt-images"  # was "https://platform.runblob.io/v1/chatgpt-images"
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json"
        }
    
    def generate(self, prompt: str, 
                 aspect_ratio: Optional[str] = None,
                 images: Optional[List[str]] = None,
                 callback_url: Optional[str] = None) -> dict:
        """Create a new image generation."""
        if len(prompt) < 1 or len(prompt) > 4000:
            raise ValueError("Prompt must be 1-4000 characters")
        
        payload = {"prompt": prompt}
        
        if aspect_ratio:
            if aspect_ratio not in ["1:1", "4:3", "3:4"]:
                raise ValueError("aspect_ratio must be one of: 1:1, 4:3, 3:4")
            payload["aspect_ratio"] = aspect_ratio
        
        if images:
            if len(images) > 4:
                raise ValueError("Maximum 4 images allowed")
            payload["images"] = images
        
        if callback_url:
            payload["callback_url"] = callback_url
        
        try:
            response = requests.post(
                f"{self.base_url}/generate",
                headers=self.headers,
                json=payload
            )
            response.raise_for_status()
            return response.json()
        except requests.exceptions.HTTPError as e:
            if e.response.status_code == 402:
                raise Exception("Insufficient credits")
            elif e.response.status_code == 401:
                raise Exception("Invalid API key")
            elif e.response.status_code == 400:
                error_msg = e.response.json().get("detail", "Bad request")
                raise Exception(f"Invalid request: {error_msg}")
            elif e.response.status_code == 500:
                error_msg = e.response.json().get("detail", "Server error")
                raise Exception(f"Server error: {error_msg}")
            elif e.response.status_code == 503:
                raise Exception("Service maintenance in progress")
            else:
                raise Exception(f"API Error: {e.response.text}")
    
    def get_status(self, task_uuid: str) -> dict:
        """Get generation status."""
        try:
            response = requests.get(
                f"{self.base_url}/generations/{task_uuid}",
                headers=self.headers
            )
            response.raise_for_status()
            return response.json()
        except requests.exceptions.HTTPError as e:
            if e.response.status_code == 404:
                raise Exception("Task not found")
            raise Exception(f"API Error: {e.response.text}")
    
    def wait_for_completion(self, task_uuid: str, 
                          timeout: int = 300) -> Optional[str]:
        """Wait for generation to complete with timeout (default 5 min)."""
        start_time = time.time()
        
        while time.time() - start_time < timeout:
            result = self.get_status(task_uuid)
            
            if result["status"] == "completed":
                return result["result_image_url"]
            elif result["status"] == "failed":
                error_msg = result.get("message", "Unknown error")
                raise Exception(f"Generation failed: {error_msg}")
            
            time.sleep(10)
        
        raise Exception("Generation timeout")


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


# Simple generation (auto aspect ratio)
client = ChatGPTImageClient(API_KEY)
result = client.generate("A beautiful landscape with mountains")
check(result["status"] == "pending" and result["price"] == "0.0123", "create answers pending with a string price")
image_url = client.wait_for_completion(result["task_uuid"], poll_interval=0.25)
print(f"Image ready: {image_url}")
check(requests.get(image_url).content[:8] == PNG_SIGNATURE, "the result is a PNG")

# With custom aspect ratio
result = client.generate("A portrait photo", aspect_ratio="3:4")
image_url = client.wait_for_completion(result["task_uuid"], poll_interval=0.25)
check(image_url.endswith("/0.png"), "a 3:4 task completes")

# With reference images
result = client.generate_with_references(
    "Beautiful collage combining these styles",
    images=[
        "https://example.com/ref1.jpg",
        "https://example.com/ref2.jpg"
    ],
    aspect_ratio="1:1"
)
image_url = client.wait_for_completion(result["task_uuid"], poll_interval=0.25)
check(image_url.startswith(BASE_URL), "a task with reference URLs completes")

# A validation error comes back in runblob's shape (the simple client does not raise).
result = client.generate("x", images=["not base64!"])
check(result["detail"].startswith("Validation error: images[0]"), "bad base64 is a 400 detail")

# Advanced Usage with Error Handling
api = ChatGPTImageAPI(API_KEY)
result = api.generate(prompt="A futuristic cyberpunk city")
print(f"Generation started: {result['task_uuid']}")
print(f"Price: ${result['price']}")
# ChatGPTImageAPI.wait_for_completion sleeps 10 s between polls: let the simple client poll
# quickly, then ask the advanced one, which finds the task completed on its first look.
client.wait_for_completion(result["task_uuid"], poll_interval=0.25)
image_url = api.wait_for_completion(result["task_uuid"])
print(f"Image ready: {image_url}")
check(requests.get(image_url).headers["Content-Type"] == "image/png", "the advanced client gets a PNG")

result = api.generate(
    prompt="Combine these images",
    aspect_ratio="4:3",
    images=[
        "https://example.com/ref1.jpg",
        "https://example.com/ref2.jpg"
    ],
    callback_url="https://your-app.com/webhook"
)
check("task_uuid" in result, "a create with a callback_url is accepted")

try:
    ChatGPTImageAPI("sk-not-the-configured-key").generate(prompt="x")
    check(False, "a wrong key is refused")
except Exception as e:
    check(str(e) == "Invalid API key", "a wrong key is refused")

try:
    api.get_status("dc62d83d-1953-4bca-8554-222679a7a4a9")
    check(False, "an unknown task is not found")
except Exception as e:
    check(str(e) == "Task not found", "an unknown task is not found")

try:
    api.generate(prompt="x", images=["data:image/gif;base64,R0lGODlhAQABAAAAACw="])
    check(False, "a GIF reference is refused")
except Exception as e:
    check(str(e).startswith("Invalid request: Validation error: images[0]"), "a GIF reference is refused")

print("seed python clients: all flows passed")
